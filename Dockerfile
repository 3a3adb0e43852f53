# vaurien's image: a static binary on an empty base, run as a non-root user.
#
#   docker build -t vaurien-go/vaurien .
#
# Dockerfile.prebuilt makes the same image from a binary built beforehand
# (for machines that cannot pull the Go image); the two final stages are
# kept identical by a test.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/vaurien-go/vaurien/pkg/version.Version=${VERSION}" \
      -o /out/vaurien ./cmd/vaurien

FROM scratch
COPY --from=build /out/vaurien /vaurien
# --- final stage (keep identical in Dockerfile.prebuilt) ---
COPY deploy/docker/vaurien.hcl /etc/vaurien/vaurien.hcl
ENV VAURIEN_CONFIG=/etc/vaurien/vaurien.hcl
USER 65532:65532
# the demo route, the admin API, the Toxiproxy-compatible API
EXPOSE 8000 8080 8474
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/vaurien", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/vaurien"]
CMD ["run"]
