package exporter

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stund/stund/pkg/check"
)

const goodConfig = `# the lab's modules
public_ip_cache: 2m
modules:
  default:
    transports: [udp, tcp]
    timeout: 3s
    references: [192.0.2.53:3478, "stun:192.0.2.54"]
  udp_only:
    transports: [udp]
    expect_ip: [203.0.113.10, "2001:db8:c::10"]
  relay:
    targets: ["stun:198.51.100.7:3478"]
    turn:
      username: prober
      password_env: STUNCHECK_TEST_TURN_PASSWORD
`

func TestParseFile(t *testing.T) {
	t.Setenv("STUNCHECK_TEST_TURN_PASSWORD", "hunter2-secret")
	f, err := ParseFile([]byte(goodConfig), "exporter.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Order, ","); got != "default,udp_only,relay" {
		t.Errorf("modules %s", got)
	}
	if f.PublicIPCache != 2*time.Minute {
		t.Errorf("public_ip_cache %s", f.PublicIPCache)
	}
	d := f.Modules["default"]
	if d.Timeout != 3*time.Second || len(d.Transports) != 2 || len(d.References) != 2 {
		t.Errorf("default module %+v", d)
	}
	u := f.Modules["udp_only"]
	if u.Timeout != check.DefaultTimeout || len(u.Transports) != 1 || u.Transports[0] != check.UDP ||
		len(u.ExpectIPs) != 2 || u.ExpectIPs[1] != netip.MustParseAddr("2001:db8:c::10") || u.References != nil {
		t.Errorf("udp_only module %+v", u)
	}
	r := f.Modules["relay"]
	if r.TURN == nil || r.TURN.Username != "prober" || r.TURN.Password.Reveal() != "hunter2-secret" ||
		r.TURN.From != "env STUNCHECK_TEST_TURN_PASSWORD" {
		t.Fatalf("relay module TURN %+v", r.TURN)
	}
	for _, s := range []string{fmt.Sprint(r.TURN), fmt.Sprintf("%v %+v %#v %s", r, r.TURN, r.TURN, r.TURN.Password)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("formatting shows the password: %s", s)
		}
	}
}

func TestParseFilePasswordFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "modules:\n  r:\n    targets: [192.0.2.1]\n    turn: {username: u, password_file: pw}\n"
	f, err := ParseFile([]byte(cfg), filepath.Join(dir, "exporter.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Modules["r"].TURN.Password.Reveal(); got != "from-a-file" {
		t.Errorf("password %q, want the file's first line without its newline", got)
	}
}

// TestParseFileRefused checks that every mistake is refused with the
// line it is on.
func TestParseFileRefused(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int
		want       string
	}{
		{"unknown top-level key", "modules:\n  a: {}\nmodule_typo: 1\n", 3, `unknown key "module_typo"`},
		{"unknown module key", "modules:\n  a:\n    timeout: 1s\n    transport: [udp]\n", 4, `unknown key "transport" in module a`},
		{"unknown turn key", "modules:\n  a:\n    targets: [192.0.2.1]\n    turn:\n      username: u\n      pasword_env: X\n", 6, `unknown key "pasword_env"`},
		{"password in the file", "modules:\n  a:\n    targets: [192.0.2.1]\n    turn:\n      username: u\n      password: x\n", 6, "password_file or password_env"},
		{"bad transport", "modules:\n  a:\n    transports: [udp, sctp]\n", 3, `transport "sctp"`},
		{"repeated transport", "modules:\n  a:\n    transports:\n      - udp\n      - udp\n", 5, "given twice"},
		{"bad timeout", "modules:\n  a:\n    timeout: 5\n", 3, "want a duration"},
		{"timeout too long", "modules:\n  a:\n    timeout: 2m\n", 3, "at most 1m0s"},
		{"bad expect_ip", "modules:\n  a:\n    expect_ip: [203.0.113.300]\n", 3, "not an IP address"},
		{"two IPv4 expect_ip", "modules:\n  a:\n    expect_ip:\n      - 203.0.113.10\n      - 203.0.113.11\n", 5, "at most one per family"},
		{"bad reference", "modules:\n  a:\n    references: [\"stuns:x\"]\n", 3, "reference"},
		{"bad target", "modules:\n  a:\n    targets: [\"http://x\"]\n", 3, "unsupported scheme"},
		{"TURN without targets", "modules:\n  a:\n    turn:\n      username: u\n      password_env: HOME\n", 4, "no targets"},
		{"TURN env unset", "modules:\n  a:\n    targets: [192.0.2.1]\n    turn:\n      username: u\n      password_env: STUNCHECK_TEST_UNSET\n", 6, "not set"},
		{"TURN file missing", "modules:\n  a:\n    targets: [192.0.2.1]\n    turn:\n      username: u\n      password_file: /nonexistent/pw\n", 6, "no such file"},
		{"TURN no username", "modules:\n  a:\n    targets: [192.0.2.1]\n    turn:\n      password_env: HOME\n", 5, "username is missing"},
		{"secret in the file", "modules:\n  a:\n    targets: [192.0.2.1]\n    turn:\n      secret: x\n", 5, "secret_file or secret_env"},
		{"password and secret", "modules:\n  a:\n    targets: [192.0.2.1]\n    turn:\n      username: u\n      password_env: HOME\n      secret_env: HOME\n", 7, "not password_env and secret_env"},
		{"TURN no credentials", "modules:\n  a:\n    targets: [192.0.2.1]\n    turn:\n      username: u\n", 5, "secret_env (REST credentials), is missing"},
		{"bad module name", "modules:\n  \"a b\": {}\n", 2, "module name"},
		{"duplicate module", "modules:\n  a: {}\n  a: {}\n", 3, "given twice"},
		{"no modules", "public_ip_cache: 1m\n", 1, "no modules"},
		{"empty modules", "modules: {}\n", 1, "empty"},
		{"bad public_ip_cache", "public_ip_cache: soon\nmodules:\n  a: {}\n", 1, "want a duration"},
		{"modules is a list", "modules:\n  - a\n", 2, "want a mapping"},
		{"timeout is a list", "modules:\n  a:\n    timeout: [1s]\n", 3, "single value"},
		{"bad YAML", "modules:\n  a:\n    targets: [\"x\n", 3, "not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tc.yaml), "x.yml")
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v, want a *ConfigError", err)
			}
			if ce.Line != tc.line || !strings.Contains(ce.Msg, tc.want) {
				t.Errorf("error %q at line %d, want line %d saying %q", ce.Msg, ce.Line, tc.line, tc.want)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("x.yml:%d: ", tc.line)) {
				t.Errorf("error %q does not start with x.yml:%d:", err, tc.line)
			}
		})
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("modules:\n  a: {timeout: 1s, transports: [udp]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseFile(data, "fuzz.yml")
		if err == nil && len(file.Modules) == 0 {
			t.Fatal("accepted a file without modules")
		}
	})
}
