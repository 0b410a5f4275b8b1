# driftmon's container image, for those who build with Docker: `docker build -t driftmon .`
# `make image` builds the same image without Docker (deploy/image): a static binary, CA
# roots and the non-root user 65532, run as that user with the config at
# /etc/driftmon/driftmon.yaml and /var/lib/driftmon as its working directory, for state.path.
# deploy/image's TestDockerfileMatchesTheImage keeps the two in step.
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
ARG COMMIT=""
ARG BUILD_DATE=""
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-X github.com/driftmon/driftmon/internal/version.version=${VERSION} -X github.com/driftmon/driftmon/internal/version.commit=${COMMIT} -X github.com/driftmon/driftmon/internal/version.date=${BUILD_DATE}" \
      -o /out/driftmon ./cmd/driftmon \
 && mkdir -p /out/state

# distroless static: no shell, no libc; CA roots, /etc/passwd with nonroot (65532), tzdata.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/driftmon /usr/local/bin/driftmon
COPY --from=build --chown=65532:65532 /out/state /var/lib/driftmon
WORKDIR /var/lib/driftmon
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/driftmon"]
CMD ["run", "-c", "/etc/driftmon/driftmon.yaml"]
