package org.fhirassist.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.HardcodedServerAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.springframework.context.ApplicationContext;

/** The REST layer: one JPA resource provider per R4 resource type, the system provider
 * (transactions, batches), database-backed paging and HAPI's capability statement. */
public class FhirRestfulServer extends RestfulServer {

    static final int DEFAULT_PAGE_SIZE = 20;
    static final int MAXIMUM_PAGE_SIZE = 200;

    private final transient ApplicationContext spring;
    private final String baseUrl;

    public FhirRestfulServer(ApplicationContext spring, String baseUrl) {
        super(spring.getBean(FhirContext.class));
        this.spring = spring;
        this.baseUrl = baseUrl;
    }

    @Override
    @SuppressWarnings({"rawtypes", "unchecked"})
    protected void initialize() {
        setServerAddressStrategy(new HardcodedServerAddressStrategy(baseUrl));
        setDefaultResponseEncoding(EncodingEnum.JSON);
        registerProviders(spring.getBean(ResourceProviderFactory.class).createProviders());
        registerProvider(spring.getBean(JpaSystemProvider.class));

        DatabaseBackedPagingProvider paging = spring.getBean(DatabaseBackedPagingProvider.class);
        paging.setDefaultPageSize(DEFAULT_PAGE_SIZE);
        paging.setMaximumPageSize(MAXIMUM_PAGE_SIZE);
        setPagingProvider(paging);

        IFhirSystemDao systemDao = spring.getBean(IFhirSystemDao.class);
        setServerConformanceProvider(new JpaCapabilityStatementProvider(
                this, systemDao, spring.getBean(JpaStorageSettings.class),
                spring.getBean(ISearchParamRegistry.class), spring.getBean(IValidationSupport.class)));
    }
}
