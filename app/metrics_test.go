package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/ops"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// newRoleApp is an App over a real store and Redis for running roles.
func newRoleApp(t *testing.T, metricsAddr string) *App {
	t.Helper()
	cfg, err := config.FromEnv(func(k string) string {
		if k == "SCIMSYNC_METRICS_ADDR" {
			return metricsAddr
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShutdownTimeout = 5 * time.Second
	box, _ := secret.NewBox(bytes.Repeat([]byte{1}, 32))
	return &App{
		Cfg: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store: storetest.Open(t, storetest.Backends()[0], store.Options{}), Broker: brokertest.Open(t),
		Registry: ops.NewRegistry(), Box: box,
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestWorkerAndSchedulerServeMetrics(t *testing.T) {
	addr := freeAddr(t)
	a := newRoleApp(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, Roles{Worker: true, Scheduler: true}, io.Discard) }()

	var body string
	for i := 0; i < 100; i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The relay's counters are the worker's own; the Go collector shows it
	// is the process registry.
	for _, want := range []string{"go_goroutines", "scimsync_"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%.500s", want, body)
		}
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("metrics listener still up after shutdown")
	}
}

func TestMetricsAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a := newRoleApp(t, ln.Addr().String())
	err = a.Run(context.Background(), Roles{Scheduler: true}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SCIMSYNC_METRICS_ADDR") {
		t.Fatalf("Run = %v, want an error naming SCIMSYNC_METRICS_ADDR", err)
	}
}
