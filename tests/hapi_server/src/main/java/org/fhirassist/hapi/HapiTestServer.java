package org.fhirassist.hapi;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import jakarta.servlet.DispatcherType;
import java.util.EnumSet;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * Runs the HAPI FHIR JPA test server in the foreground on 127.0.0.1:PORT with base URL
 * http://127.0.0.1:PORT/fhir, and prints that URL on a line of its own once
 * GET /fhir/metadata answers 200.
 */
public final class HapiTestServer {

    private HapiTestServer() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1 || !args[0].matches("\\d{1,5}")) {
            System.err.println("usage: HapiTestServer PORT");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        String baseUrl = "http://127.0.0.1:" + port + "/fhir";

        AnnotationConfigApplicationContext spring = new AnnotationConfigApplicationContext(ServerConfig.class);
        Server jetty = new Server();
        ServerConnector connector = new ServerConnector(jetty);
        connector.setHost("127.0.0.1");
        connector.setPort(port);
        jetty.addConnector(connector);
        ServletContextHandler context = new ServletContextHandler();
        context.setContextPath("/");
        ServletHolder fhir = new ServletHolder("fhir", new FhirRestfulServer(spring, baseUrl));
        fhir.setInitOrder(1);
        context.addServlet(fhir, "/fhir/*");
        String token = System.getenv("HAPI_TEST_BEARER_TOKEN");
        if (token != null && !token.isBlank()) {
            context.addFilter(new FilterHolder(new BearerTokenFilter(token.strip())), "/fhir/*",
                    EnumSet.of(DispatcherType.REQUEST));
        }
        jetty.setHandler(context);
        jetty.setStopAtShutdown(true);
        Runtime.getRuntime().addShutdownHook(new Thread(spring::close));
        jetty.start();

        waitForMetadata(baseUrl);
        System.out.println(baseUrl);
        System.out.flush();
        jetty.join();
    }

    private static void waitForMetadata(String baseUrl) throws InterruptedException {
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        HttpRequest request = HttpRequest.newBuilder(URI.create(baseUrl + "/metadata"))
                .header("Accept", "application/fhir+json").timeout(Duration.ofSeconds(60)).build();
        for (int attempt = 0; attempt < 600; attempt++) {
            try {
                if (client.send(request, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
                    return;
                }
            } catch (java.io.IOException notYet) {
                // the connector is not accepting yet
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("GET " + baseUrl + "/metadata never answered 200");
    }
}
