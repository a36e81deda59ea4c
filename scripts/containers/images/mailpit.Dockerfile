# citaflow-local/mailpit:<version> — Mailpit built by the launcher from the Go module proxy
# (.cache/bin/mailpit), in the role of axllent/mailpit: SMTP on 1025, web UI and API on 8025.
ARG RUNTIME
FROM ${RUNTIME}
COPY mailpit /mailpit
EXPOSE 1025 8025
ENTRYPOINT ["/mailpit"]
