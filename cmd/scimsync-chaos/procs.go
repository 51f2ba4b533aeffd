package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// freeAddr picks a free loopback port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Proc is one child process the run supervises: a scimsync role or
// redis-server. Each start appends to the same log file.
type Proc struct {
	Name string
	Path string
	Args []string
	Env  []string
	// Addr is the HTTP address whose /healthz (or, for redis, the port)
	// says the process is up.
	Addr string
	// ReadyPath is the HTTP path polled after start ("" for a TCP check).
	ReadyPath string
	LogPath   string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	Starts   int
	Kills    int
	Restarts int
}

// Start runs the process and waits until it is ready.
func (p *Proc) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	fmt.Fprintf(logf, "\n==== chaos: start %s at %s\n", p.Name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C at the terminal reaches the run
	// (which then stops its children) rather than the children directly;
	// and killed should the run itself die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	p.Starts++
	return p.waitReady(ctx, exited)
}

func (p *Proc) waitReady(ctx context.Context, exited chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting; see %s", p.Name, p.LogPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if p.ReadyPath == "" {
			if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
				c.Close()
				return nil
			}
			continue
		}
		resp, err := client.Get("http://" + p.Addr + p.ReadyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s not ready after 60s; see %s", p.Name, p.LogPath)
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Proc) Kill() {
	p.stop(syscall.SIGKILL)
	p.mu.Lock()
	p.Kills++
	p.mu.Unlock()
}

// Stop ends the process with SIGTERM (SIGKILL after 15s).
func (p *Proc) Stop() { p.stop(syscall.SIGTERM) }

func (p *Proc) stop(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// Running reports whether the process is started and has not exited.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Restart starts a stopped or crashed process again.
func (p *Proc) Restart(ctx context.Context) error {
	p.mu.Lock()
	if p.cmd != nil {
		select {
		case <-p.exited:
			p.cmd = nil
		default:
		}
	}
	p.Restarts++
	p.mu.Unlock()
	return p.Start(ctx)
}

// buildScimsync builds the scimsync binary from the module this command
// is in, into dir.
func buildScimsync(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "scimsync")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/scimsync/scimsync/cmd/scimsync")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build scimsync (or pass -scimsync PATH): %w", err)
	}
	return out, nil
}

var errNotLoopback = errors.New("not a loopback address")

// loopbackOnly refuses a URL whose host is not 127.0.0.1 or ::1: the run
// starts and kills processes and drops databases, so it never points at
// anything shared beyond this machine.
func loopbackOnly(host string) error {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	return fmt.Errorf("%q: %w", host, errNotLoopback)
}
