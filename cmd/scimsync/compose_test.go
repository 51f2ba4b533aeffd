package main

import (
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/scimsync/scimsync/config"
)

// composeFile is the part of docker-compose.yml that must agree with the
// binary's configuration.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		DependsOn   map[string]any    `yaml:"depends_on"`
	} `yaml:"services"`
}

// interpolate resolves ${VAR:-default} and ${VAR:?message} the way compose
// does when the variable is set to a sample value.
func interpolate(s string) string {
	re := regexp.MustCompile(`\$\{([A-Z_]+)(:[-?][^}]*)?\}`)
	samples := map[string]string{
		"SCIMSYNC_ADMIN_TOKEN": "compose-sample-admin-token",
		"SCIMSYNC_SECRET_KEY":  strings.Repeat("0f", 32),
	}
	return re.ReplaceAllStringFunc(s, func(m string) string {
		name := re.FindStringSubmatch(m)[1]
		if v, ok := samples[name]; ok {
			return v
		}
		if sub := re.FindStringSubmatch(m)[2]; strings.HasPrefix(sub, ":-") {
			return sub[2:]
		}
		return ""
	})
}

func TestComposeMatchesConfiguration(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	known := map[string]bool{}
	for _, v := range config.Vars {
		known[v.Env] = true
	}
	var cmds []string
	for _, c := range commands() {
		cmds = append(cmds, c.name)
	}

	for _, want := range []string{"postgres", "redis", "mailpit", "api", "worker", "scheduler"} {
		if _, ok := cf.Services[want]; !ok {
			t.Errorf("service %q is missing", want)
		}
	}
	roles := map[string]string{"api": "api", "worker": "worker", "scheduler": "scheduler", "migrate": "migrate"}
	for name, svc := range cf.Services {
		if svc.Build == nil {
			continue // a third-party image
		}
		t.Run(name, func(t *testing.T) {
			if len(svc.Command) == 0 || !slices.Contains(cmds, svc.Command[0]) {
				t.Fatalf("command %v is not a scimsync command (%v)", svc.Command, cmds)
			}
			if want, ok := roles[name]; ok && svc.Command[0] != want {
				t.Errorf("service %s runs %q, want %q", name, svc.Command[0], want)
			}
			env := map[string]string{}
			for k, v := range svc.Environment {
				if !known[k] {
					t.Errorf("environment %s is not a scimsync setting", k)
				}
				env[k] = interpolate(v)
			}
			cfg, err := config.FromEnv(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("the binary rejects this environment: %v", err)
			}
			db, _ := config.ParseDatabaseURL(cfg.DatabaseURL)
			if db.Driver != "postgres" {
				t.Errorf("DATABASE_URL driver = %s, want postgres", db.Driver)
			}
			for setting, service := range map[string]string{"DATABASE_URL": "postgres", "REDIS_URL": "redis", "SMTP_URL": "mailpit"} {
				u, err := url.Parse(env[setting])
				if err != nil || u.Hostname() != service {
					t.Errorf("%s = %q does not point at the %s service", setting, env[setting], service)
				}
				if _, ok := cf.Services[service]; !ok {
					t.Errorf("%s names service %s, which compose does not define", setting, service)
				}
			}
			if !strings.HasPrefix(cfg.HTTPAddr, "0.0.0.0:") {
				t.Errorf("SCIMSYNC_HTTP_ADDR = %s: a container must listen on all interfaces", cfg.HTTPAddr)
			}
			_, port, _ := net.SplitHostPort(cfg.HTTPAddr)
			for _, p := range svc.Ports {
				if parts := strings.Split(p, ":"); parts[len(parts)-1] != port {
					t.Errorf("port mapping %q does not reach the listen port %s", p, port)
				}
			}
			if name == "api" && len(svc.Ports) == 0 {
				t.Error("api publishes no port")
			}
			if name != "migrate" {
				if _, ok := svc.DependsOn["migrate"]; !ok {
					t.Error("does not wait for migrate")
				}
			}
		})
	}
	if pg := cf.Services["postgres"].Environment; pg["POSTGRES_DB"] == "" {
		t.Error("postgres service names no database")
	} else {
		u, _ := url.Parse(cf.Services["api"].Environment["DATABASE_URL"])
		if strings.TrimPrefix(u.Path, "/") != pg["POSTGRES_DB"] || u.User.Username() != pg["POSTGRES_USER"] {
			t.Errorf("DATABASE_URL %s does not match the postgres service's user and database", u.Redacted())
		}
	}
	if m := cf.Services["mailpit"]; !slices.Contains(m.Ports, "8025:8025") {
		t.Error("mailpit's web UI is not published")
	}
}

func TestDockerfileBuildsTheBinary(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/scimsync", `ENTRYPOINT ["/usr/local/bin/scimsync"]`, "EXPOSE 8080"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
