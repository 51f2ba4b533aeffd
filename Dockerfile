# Build a static scimsync binary and run it as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/scimsync ./cmd/scimsync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/scimsync /usr/local/bin/scimsync
WORKDIR /var/lib/scimsync
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/scimsync"]
CMD ["serve"]
