//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A Lab is a set of network namespaces that belong to one test. Everything it
// creates (namespaces, the veth pairs inside them, the processes started in
// them) is removed when the test ends, whether it passed, failed or was
// interrupted. The Lab never changes the host's own namespace: links are
// created directly inside the lab's namespaces and every sysctl and nftables
// rule is applied inside one of them.
type Lab struct {
	t     testing.TB
	id    string
	hosts []*Host
}

// A Host is one network namespace of a Lab, named after its role.
type Host struct {
	Role string // what the host plays in the lab, e.g. "client"
	NS   string // the namespace's name, unique per run
	lab  *Lab
}

// An Endpoint is one end of a Link: a host and the addresses (CIDR prefixes)
// its side of the link gets.
type Endpoint struct {
	Host  *Host
	Addrs []string
}

// A Link is a veth pair between two hosts. Each side's interface is named
// after the host at the other end, so `ip -n <lb> addr` shows "node" and
// "internet".
type Link struct {
	A, B Endpoint
}

// Interfaces names the interface on each side of the link.
func (l *Link) Interfaces() (a, b string) { return l.B.Host.Role, l.A.Host.Role }

// runID makes namespace names unique per test binary; labSeq per lab.
var (
	runID  = randomID()
	labSeq atomic.Int64
)

func randomID() string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// NewLab creates an empty lab whose namespaces are removed when t ends.
func NewLab(t testing.TB) *Lab {
	t.Helper()
	requireLab(t)
	l := &Lab{t: t, id: fmt.Sprintf("stundlab-%s-%d", runID, labSeq.Add(1))}
	t.Cleanup(l.close)
	return l
}

// Host creates a namespace for role with loopback up, duplicate address
// detection off (IPv6 addresses are usable at once, no waiting for DAD) and
// reverse-path filtering off (the lab's routing is symmetric, but whatever
// default a distribution sets must not silently drop NATed traffic).
func (l *Lab) Host(role string) *Host {
	l.t.Helper()
	h := &Host{Role: role, NS: l.id + "-" + role, lab: l}
	var out []byte
	var err error
	registry.guard(func() {
		if out, err = exec.Command("ip", "netns", "add", h.NS).CombinedOutput(); err == nil {
			registry.namespaces[h.NS] = true
		}
	})
	if err != nil {
		l.t.Fatalf("ip netns add %s: %v: %s", h.NS, err, out)
	}
	l.hosts = append(l.hosts, h)
	h.MustExec("sysctl", "-q", "-w",
		"net.ipv6.conf.all.accept_dad=0",
		"net.ipv6.conf.default.accept_dad=0",
		"net.ipv4.conf.all.rp_filter=0",
		"net.ipv4.conf.default.rp_filter=0",
	)
	h.IP("link", "set", "lo", "up")
	return h
}

// At names one end of a link: this host with the given addresses on it.
func (h *Host) At(addrs ...string) Endpoint { return Endpoint{Host: h, Addrs: addrs} }

// Connect joins two hosts with a veth pair, addresses both ends and brings
// them up. The pair is created inside the namespaces, never in the host's.
func (l *Lab) Connect(a, b Endpoint) *Link {
	l.t.Helper()
	link := &Link{A: a, B: b}
	aIf, bIf := link.Interfaces()
	a.Host.IP("link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.Host.NS)
	for _, end := range []struct {
		Endpoint
		dev string
	}{{a, aIf}, {b, bIf}} {
		for _, p := range end.Addrs {
			args := []string{"addr", "add", p, "dev", end.dev}
			if strings.Contains(p, ":") {
				args = append(args, "nodad")
			}
			end.Host.IP(args...)
		}
		end.Host.IP("link", "set", end.dev, "up")
	}
	return link
}

// IP runs `ip -n <ns> args...` and fails the test on error.
func (h *Host) IP(args ...string) {
	h.lab.t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", h.NS}, args...)...).CombinedOutput(); err != nil {
		h.lab.t.Fatalf("%s: ip %s: %v: %s", h.Role, strings.Join(args, " "), err, out)
	}
}

// Route adds a route, e.g. Route("default", "10.1.0.1").
func (h *Host) Route(dst, via string) {
	h.lab.t.Helper()
	args := []string{"route", "add", dst, "via", via}
	if strings.Contains(via, ":") {
		args = append([]string{"-6"}, args...)
	}
	h.IP(args...)
}

// Forward makes the host a router for IPv4 and IPv6, inside its namespace only.
func (h *Host) Forward() {
	h.lab.t.Helper()
	h.MustExec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
}

// NFT loads an nftables ruleset into the host's namespace.
func (h *Host) NFT(ruleset string) {
	h.lab.t.Helper()
	cmd := h.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		h.lab.t.Fatalf("%s: nft -f: %v: %s\nruleset:\n%s", h.Role, err, out, ruleset)
	}
}

// Exec runs a command inside the host's namespace and returns its combined
// output. The command is killed after 30 seconds.
func (h *Host) Exec(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// MustExec is Exec that fails the test on error.
func (h *Host) MustExec(name string, args ...string) string {
	h.lab.t.Helper()
	out, err := h.Exec(name, args...)
	if err != nil {
		h.lab.t.Fatalf("%s: %s %s: %v: %s", h.Role, name, strings.Join(args, " "), err, out)
	}
	return out
}

// Command prepares a command that runs inside the host's namespace and is
// killed when ctx is done.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// A Proc is a long-running process started in a host; it is stopped when
// the lab closes.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{}
	err  error
}

// Start runs a long-running command inside the host. Its output is kept and
// printed if the test fails.
func (h *Host) Start(name string, args ...string) *Proc {
	h.lab.t.Helper()
	return h.StartEnv(nil, name, args...)
}

// StartEnv is Start with env added to the test's environment.
func (h *Host) StartEnv(env []string, name string, args ...string) *Proc {
	h.lab.t.Helper()
	p := &Proc{Name: h.Role + "/" + filepath.Base(name), cmd: h.Command(context.Background(), name, args...), done: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	// Its own process group, so that a Ctrl-C at the terminal reaches only
	// the test binary, which then stops everything in order.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var err error
	registry.guard(func() {
		if err = p.cmd.Start(); err == nil {
			registry.procs[p] = true
		}
	})
	if err != nil {
		h.lab.t.Fatalf("%s: start %s: %v", h.Role, name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	h.lab.t.Cleanup(func() {
		p.Stop()
		if h.lab.t.Failed() {
			h.lab.t.Logf("output of %s (%s):\n%s", p.Name, p.cmd, tail(p.Output(), 4000))
		}
	})
	return p
}

// Output returns what the process wrote so far.
func (p *Proc) Output() string { return p.out.String() }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop ends the process: SIGTERM, then SIGKILL after two seconds.
func (p *Proc) Stop() {
	defer registry.removeProc(p)
	if exited, _ := p.Exited(); exited {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// DialContext opens a connection from inside the host's namespace: the socket
// is created on an OS thread that has joined the namespace, and keeps
// belonging to it afterwards.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := h.inNamespace(func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// HTTPGet fetches url from inside the host's namespace.
func (h *Host) HTTPGet(ctx context.Context, url string) (int, string, error) {
	client := &http.Client{Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// inNamespace runs fn on a locked OS thread that has joined the host's
// network namespace. A thread that cannot go back to its original namespace
// stays locked, so the runtime throws it away when the goroutine ends.
func (h *Host) inNamespace(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + h.NS)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			errc <- fmt.Errorf("join namespace %s: %w", h.NS, err)
			return
		}
		err = fn()
		if err := setns(orig); err != nil {
			errc <- fmt.Errorf("leave namespace %s: %w", h.NS, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// close stops the lab's processes and removes its namespaces; when the test
// failed it first logs each host's addresses, routes and nftables rules.
func (l *Lab) close() {
	var hosts []*Host
	for _, h := range l.hosts {
		if registry.has(h.NS) {
			hosts = append(hosts, h)
		}
	}
	if l.t.Failed() {
		for _, h := range hosts {
			var b strings.Builder
			for _, args := range [][]string{
				{"ip", "-br", "addr"}, {"ip", "route"}, {"ip", "-6", "route"}, {"nft", "list", "ruleset"},
			} {
				out, _ := h.Exec(args[0], args[1:]...)
				fmt.Fprintf(&b, "$ %s\n%s", strings.Join(args, " "), out)
			}
			l.t.Logf("state of %s (%s):\n%s", h.Role, h.NS, b.String())
		}
	}
	for i := len(hosts) - 1; i >= 0; i-- {
		if err := removeNamespace(hosts[i].NS); err != nil {
			l.t.Errorf("remove namespace: %v", err)
		}
	}
}

// removeNamespace kills whatever still runs inside ns (only processes this
// test started can be there: the name is unique to this run) and deletes it.
func removeNamespace(ns string) error {
	defer registry.removeNamespace(ns)
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", ns, err, out)
	}
	return nil
}

// registry remembers every namespace and process the test binary created, so
// that an interrupt or a timeout can remove them even though t.Cleanup does
// not run then.
var registry = &labRegistry{namespaces: map[string]bool{}, procs: map[*Proc]bool{}, cleanups: map[*func()]bool{}}

type labRegistry struct {
	mu         sync.Mutex
	closing    bool // removeAll ran: the binary is about to exit
	namespaces map[string]bool
	procs      map[*Proc]bool
	cleanups   map[*func()]bool // what else a lab made outside its namespaces
}

// atExit records fn, which removes something a lab made outside its
// namespaces (a real node's cgroups, mounts and state), for removeAll to
// run too; the test runs it itself and then calls done.
func (r *labRegistry) atExit(fn func()) (done func()) {
	r.guard(func() { r.cleanups[&fn] = true })
	return func() { r.mu.Lock(); delete(r.cleanups, &fn); r.mu.Unlock() }
}

// guard runs fn, which creates a namespace or a process and records it,
// under the registry's lock, so that removeAll sees all of it or none. Once
// removeAll has run, the binary is exiting and guard blocks for good rather
// than create something nobody would remove.
func (r *labRegistry) guard(fn func()) {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		select {}
	}
	defer r.mu.Unlock()
	fn()
}

func (r *labRegistry) removeNamespace(ns string) {
	r.mu.Lock()
	delete(r.namespaces, ns)
	r.mu.Unlock()
}
func (r *labRegistry) has(ns string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.namespaces[ns]
}
func (r *labRegistry) removeProc(p *Proc) { r.mu.Lock(); delete(r.procs, p); r.mu.Unlock() }

// removeAll stops every process and removes every namespace still known. It
// returns the namespaces it removed.
func (r *labRegistry) removeAll() []string {
	r.mu.Lock()
	r.closing = true
	procs := make([]*Proc, 0, len(r.procs))
	for p := range r.procs {
		procs = append(procs, p)
	}
	namespaces := make([]string, 0, len(r.namespaces))
	for ns := range r.namespaces {
		namespaces = append(namespaces, ns)
	}
	cleanups := make([]func(), 0, len(r.cleanups))
	for fn := range r.cleanups {
		cleanups = append(cleanups, *fn)
	}
	r.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Kill()
	}
	for _, fn := range cleanups {
		fn()
	}
	for _, ns := range namespaces {
		_ = removeNamespace(ns)
	}
	return namespaces
}

// lockedBuffer collects a process's output from two pipes at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

var labCheck struct {
	once sync.Once
	err  error
}

// requireLab stops the test when this machine cannot run the lab: skipped
// with the reason, or failed under CI=true, where a lab that silently skips
// would prove nothing.
func requireLab(t testing.TB) {
	t.Helper()
	labCheck.once.Do(func() { labCheck.err = canRunLab() })
	if labCheck.err != nil {
		unavailable(t, labCheck.err.Error())
	}
}

func canRunLab() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the lab needs root to create network namespaces (run: sudo go test -tags e2e ./e2e/...)")
	}
	for _, tool := range []string{"ip", "nft", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the lab needs %s: %v (Debian: apt-get install iproute2 nftables procps)", tool, err)
		}
	}
	probe := "stundlab-" + runID + "-probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		return fmt.Errorf("cannot create a network namespace: %v: %s", err, out)
	}
	if out, err := exec.Command("ip", "netns", "del", probe).CombinedOutput(); err != nil {
		return fmt.Errorf("cannot remove network namespace %s: %v: %s", probe, err, out)
	}
	return nil
}

// requireTool stops the test, like requireLab, when a program a scenario
// needs is not installed.
func requireTool(t testing.TB, tool, debianPackage string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		unavailable(t, fmt.Sprintf("this scenario needs %s (Debian: apt-get install %s)", tool, debianPackage))
	}
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and the lab cannot run: %s", why)
	}
	t.Skipf("skipping the lab: %s", why)
}
