-- The schema registry's storage (APICURIO_DATASOURCE_URL in compose.yaml), beside the services' database.
CREATE DATABASE registry OWNER citaflow;
