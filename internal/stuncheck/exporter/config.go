package exporter

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stund/stund/pkg/check"
)

// Defaults and limits of a configuration file.
const (
	// DefaultModule is the module /probe uses when the request names none.
	DefaultModule = "default"
	// DefaultPublicIPCache is how long a public IP learned from reference
	// servers is kept.
	DefaultPublicIPCache = 10 * time.Minute
	// MaxTimeout bounds a module's timeout: a probe longer than this would
	// outlive any sensible scrape timeout.
	MaxTimeout = time.Minute
)

// File is a parsed configuration file.
type File struct {
	// Modules by name.
	Modules map[string]*Module
	// Order is the module names in the order the file gives them.
	Order []string
	// PublicIPCache is how long a public IP learned from references is
	// kept; a failed lookup is retried after at most 30 seconds.
	PublicIPCache time.Duration
}

// Module is one named way to probe.
type Module struct {
	Name string
	// Transports to probe; a request may ask for a subset.
	Transports []check.Transport
	// Timeout bounds a whole probe; a shorter scrape timeout wins.
	Timeout time.Duration
	// ExpectIPs are the public IPs, at most one per family.
	ExpectIPs []netip.Addr
	// References are the servers asked for the public IP of the families
	// ExpectIPs does not give; nil means check.DefaultReferences, empty
	// means none.
	References []string
	// Targets, when not empty, are the only targets this module probes,
	// as written in the file. A module with TURN credentials has them.
	Targets []string
	// TURN holds the credentials for TURN targets, or nil.
	TURN *TURNCredentials
}

// TURNCredentials are a TURN username and password, or a TURN REST API
// shared secret (with REST, Password holds the secret and Username is the
// optional name part). The secret is never shown: the exporter's pages say
// only where it comes from.
type TURNCredentials struct {
	Username string
	Password Secret
	REST     bool
	// From says where the password was read: "file PATH" or "env NAME".
	From string
}

// Secret is a value that must never be printed. Its String and
// GoString say "<secret>"; Reveal returns the value.
type Secret struct{ v string }

// String hides the value.
func (Secret) String() string { return "<secret>" }

// GoString hides the value from %#v.
func (Secret) GoString() string { return "<secret>" }

// MarshalText hides the value from encoders.
func (Secret) MarshalText() ([]byte, error) { return []byte("<secret>"), nil }

// Reveal returns the secret value, for the code that uses it.
func (s Secret) Reveal() string { return s.v }

// ErrConfig is wrapped by every error about the content of a
// configuration file.
var ErrConfig = errors.New("bad configuration")

// ConfigError is a refused configuration file: where and why.
type ConfigError struct {
	File string
	// Line is 1-based; zero when the error is not about one line.
	Line int
	Msg  string
}

// Error says FILE:LINE: what is wrong.
func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}

	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// DefaultFile is the configuration without a file: one module, "default",
// probing UDP and TCP within check.DefaultTimeout and learning the public
// IP from check.DefaultReferences.
func DefaultFile() *File {
	m := &Module{Name: DefaultModule, Transports: []check.Transport{check.UDP, check.TCP}, Timeout: check.DefaultTimeout}

	return &File{Modules: map[string]*Module{DefaultModule: m}, Order: []string{DefaultModule}, PublicIPCache: DefaultPublicIPCache}
}

// LoadFile reads and parses the configuration file at path.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}

	return ParseFile(data, path)
}

// ParseFile parses a configuration; path names it in errors, and relative
// password_file paths are relative to its directory. Unknown keys and bad
// values are refused with a *ConfigError naming the line.
func ParseFile(data []byte, path string) (*File, error) {
	p := parser{file: path, dir: filepath.Dir(path)}

	return p.parse(data)
}

type parser struct {
	file string
	dir  string
}

func (p *parser) errf(n *yaml.Node, format string, a ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}

	return &ConfigError{File: p.file, Line: line, Msg: fmt.Sprintf(format, a...)}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) parse(data []byte) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimSpace(err.Error())
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			var line int
			_, _ = fmt.Sscan(m[1], &line)

			return nil, &ConfigError{File: p.file, Line: line, Msg: "not valid YAML: " + m[2]}
		}

		return nil, &ConfigError{File: p.file, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &ConfigError{File: p.file, Msg: "empty file: want a mapping with modules:"}
	}
	root := doc.Content[0]
	f := &File{Modules: map[string]*Module{}, PublicIPCache: DefaultPublicIPCache}
	var modules *yaml.Node
	err := p.mapping(root, "the top level", func(key string, k, v *yaml.Node) error {
		switch key {
		case "modules":
			modules = v

			return nil
		case "public_ip_cache":
			d, err := p.duration(k, v)
			if err != nil {
				return err
			}
			if d <= 0 {
				return p.errf(v, "public_ip_cache %s: must be positive", d)
			}
			f.PublicIPCache = d

			return nil
		default:
			return p.errf(k, "unknown key %q at the top level (want modules, public_ip_cache)", key)
		}
	})
	if err != nil {
		return nil, err
	}
	if modules == nil {
		return nil, p.errf(root, "no modules: given")
	}
	err = p.mapping(modules, "modules", func(name string, k, v *yaml.Node) error {
		if !moduleNameRE.MatchString(name) {
			return p.errf(k, "module name %q: use letters, digits, '_' and '-'", name)
		}
		m, err := p.module(name, v)
		if err != nil {
			return err
		}
		f.Modules[name] = m
		f.Order = append(f.Order, name)

		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(f.Modules) == 0 {
		return nil, p.errf(modules, "modules: is empty: define at least one module")
	}

	return f, nil
}

var moduleNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// mapping walks a YAML mapping, refusing anything else and duplicate keys.
func (p *parser) mapping(n *yaml.Node, what string, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "%s: want a mapping of keys to values", what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return p.errf(k, "%s: keys are plain words", what)
		}
		if seen[k.Value] {
			return p.errf(k, "%s: key %q given twice", what, k.Value)
		}
		seen[k.Value] = true
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}

	return nil
}

func (p *parser) scalar(k, v *yaml.Node) (string, error) {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return "", p.errf(v, "%s: want a single value", k.Value)
	}

	return v.Value, nil
}

func (p *parser) list(k, v *yaml.Node) ([]*yaml.Node, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, p.errf(v, "%s: want a list, e.g. [a, b]", k.Value)
	}
	for _, e := range v.Content {
		if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
			return nil, p.errf(e, "%s: each entry is a single value", k.Value)
		}
	}

	return v.Content, nil
}

func (p *parser) duration(k, v *yaml.Node) (time.Duration, error) {
	s, err := p.scalar(k, v)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, p.errf(v, "%s %q: want a duration such as 5s or 10m", k.Value, s)
	}

	return d, nil
}

func (p *parser) module(name string, n *yaml.Node) (*Module, error) {
	m := &Module{Name: name, Timeout: check.DefaultTimeout}
	var turnNode *yaml.Node
	err := p.mapping(n, "module "+name, func(key string, k, v *yaml.Node) error {
		switch key {
		case "transports":
			items, err := p.list(k, v)
			if err != nil {
				return err
			}
			if len(items) == 0 {
				return p.errf(v, "transports: empty: give udp, tcp or both")
			}
			for _, it := range items {
				tr := check.Transport(strings.ToLower(it.Value))
				if tr != check.UDP && tr != check.TCP {
					return p.errf(it, "transport %q: want udp or tcp", it.Value)
				}
				for _, have := range m.Transports {
					if have == tr {
						return p.errf(it, "transport %q given twice", it.Value)
					}
				}
				m.Transports = append(m.Transports, tr)
			}
		case "timeout":
			d, err := p.duration(k, v)
			if err != nil {
				return err
			}
			if d <= 0 || d > MaxTimeout {
				return p.errf(v, "timeout %s: want more than 0 and at most %s", d, MaxTimeout)
			}
			m.Timeout = d
		case "expect_ip":
			items, err := p.list(k, v)
			if err != nil {
				return err
			}
			for _, it := range items {
				ip, err := parseExpectIP(it.Value, m.ExpectIPs)
				if err != nil {
					return p.errf(it, "expect_ip: %v", err)
				}
				m.ExpectIPs = append(m.ExpectIPs, ip)
			}
		case "references":
			items, err := p.list(k, v)
			if err != nil {
				return err
			}
			m.References = []string{}
			for _, it := range items {
				if _, err := check.ParseTarget(it.Value); err != nil {
					return p.errf(it, "reference: %v", err)
				}
				m.References = append(m.References, it.Value)
			}
		case "targets":
			items, err := p.list(k, v)
			if err != nil {
				return err
			}
			for _, it := range items {
				if _, err := check.ParseTarget(it.Value); err != nil {
					return p.errf(it, "%v", err)
				}
				for _, have := range m.Targets {
					if have == it.Value {
						return p.errf(it, "target %q given twice", it.Value)
					}
				}
				m.Targets = append(m.Targets, it.Value)
			}
		case "turn":
			turnNode = v
		default:
			return p.errf(k, "unknown key %q in module %s (want transports, timeout, expect_ip, references, targets, turn)", key, name)
		}

		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(m.Transports) == 0 {
		m.Transports = []check.Transport{check.UDP, check.TCP}
	}
	if turnNode != nil {
		if m.TURN, err = p.turn(name, turnNode); err != nil {
			return nil, err
		}
		if len(m.Targets) == 0 {
			return nil, p.errf(turnNode, "module %s has TURN credentials and no targets: list the servers they are for under targets:", name)
		}
	}

	return m, nil
}

func (p *parser) turn(module string, n *yaml.Node) (*TURNCredentials, error) {
	c := &TURNCredentials{}
	sources := map[string]*yaml.Node{} // password_file, password_env, secret_file, secret_env
	err := p.mapping(n, "turn", func(key string, k, v *yaml.Node) error {
		s, err := p.scalar(k, v)
		if err != nil {
			return err
		}
		switch key {
		case "username":
			c.Username = s
		case "password_file", "password_env", "secret_file", "secret_env":
			sources[key] = v
		case "password", "secret":
			return p.errf(k, "turn: give the %s with %s_file or %s_env, not in this file", key, key, key)
		default:
			return p.errf(k, "unknown key %q in turn (want username and one of password_file, password_env, secret_file, secret_env)", key)
		}

		return nil
	})
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "turn: want username and password_file or password_env (or secret_file or secret_env)")
	}
	var key string
	for _, k := range []string{"password_file", "password_env", "secret_file", "secret_env"} {
		if v := sources[k]; v != nil {
			if key != "" {
				return nil, p.errf(v, "turn: give one of password_file, password_env, secret_file and secret_env, not %s and %s", key, k)
			}
			key = k
		}
	}
	if key == "" {
		return nil, p.errf(n, "module %s: turn: password_file or password_env (long-term credentials), or secret_file or secret_env (REST credentials), is missing", module)
	}
	c.REST = strings.HasPrefix(key, "secret_")
	if !c.REST && c.Username == "" {
		return nil, p.errf(n, "module %s: turn: username is missing", module)
	}
	v := sources[key]
	if strings.HasSuffix(key, "_file") {
		path := v.Value
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, p.errf(v, "turn: %s: %v", key, errors.Unwrap(err))
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return nil, p.errf(v, "turn: %s %s is empty", key, path)
		}
		c.Password, c.From = Secret{pw}, "file "+path
	} else {
		pw, ok := os.LookupEnv(v.Value)
		if !ok || pw == "" {
			return nil, p.errf(v, "turn: %s: $%s is not set or empty", key, v.Value)
		}
		c.Password, c.From = Secret{pw}, "env "+v.Value
	}

	return c, nil
}

// parseExpectIP parses an expected public IP and refuses a second one of
// a family already in have.
func parseExpectIP(s string, have []netip.Addr) (netip.Addr, error) {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s is not a unicast address", ip)
	}
	for _, h := range have {
		if h.Is4() == ip.Is4() {
			return netip.Addr{}, fmt.Errorf("two expected IPs of one family (%s and %s): give at most one per family", h, ip)
		}
	}

	return ip, nil
}
