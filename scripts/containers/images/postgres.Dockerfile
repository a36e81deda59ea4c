# citaflow-local/postgres:15 — PostgreSQL 15 from Debian, in the role of the official
# postgres:15 image for machines that cannot pull it: the same variables (POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB), data in /var/lib/postgresql/data, scripts in
# /docker-entrypoint-initdb.d (*.sql, *.sh) run once on the first start, port 5432.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
