package org.fhirassist.hapi;

import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Checks the bearer token a client presents, as a hospital's FHIR server behind OAuth does:
 * a request carrying an Authorization header with any other token than the configured one
 * is answered 401 with an OperationOutcome. Requests without the header pass, so tests can
 * seed data directly. Only installed when HAPI_TEST_BEARER_TOKEN is set.
 */
final class BearerTokenFilter implements Filter {

    private final String expected;

    BearerTokenFilter(String token) {
        this.expected = "Bearer " + token;
    }

    @Override
    public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
            throws IOException, ServletException {
        String presented = ((HttpServletRequest) request).getHeader("Authorization");
        if (presented == null || presented.equals(expected)) {
            chain.doFilter(request, response);
            return;
        }
        HttpServletResponse http = (HttpServletResponse) response;
        http.setStatus(HttpServletResponse.SC_UNAUTHORIZED);
        http.setContentType("application/fhir+json");
        http.setHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"");
        http.getOutputStream().write(("{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\","
                + "\"code\":\"login\",\"diagnostics\":\"invalid bearer token\"}]}").getBytes(StandardCharsets.UTF_8));
    }
}
