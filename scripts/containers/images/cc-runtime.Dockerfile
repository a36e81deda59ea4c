# citaflow-local/cc-runtime:bookworm — the runtime base made here, in the role of
# gcr.io/distroless/cc-debian12:nonroot: only the files of Debian's libc6, libgcc-s1, libssl3,
# tzdata, netbase and base-files packages, the CA bundle, and users root, nonroot (65532) and
# citaflow (10001). No shell, no package manager.
ARG BASE
FROM ${BASE} AS debs
RUN apt-get update \
 && apt-get install -y ca-certificates \
 && mkdir -p /debs /rootfs && cd /debs \
 && apt-get download libc6 libgcc-s1 libssl3 tzdata netbase base-files \
 && for deb in /debs/*.deb; do dpkg-deb -x "$deb" /rootfs; done \
 && rm -rf /rootfs/usr/share/doc /rootfs/usr/share/man /rootfs/usr/share/info /rootfs/usr/share/lintian \
 && mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/home/nonroot \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && chmod 1777 /rootfs/tmp \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\ncitaflow:x:10001:10001:citaflow:/nonexistent:/sbin/nologin\n' >/rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\ncitaflow:x:10001:\n' >/rootfs/etc/group \
 && chown 65532:65532 /rootfs/home/nonroot

FROM scratch
COPY --from=debs /rootfs/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
