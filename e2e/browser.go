//go:build e2e

package e2e

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// icePage gathers a browser's ICE candidates with the STUN server named in
// its ?stun= parameter and POSTs them, as an iceReport, to /candidates.
//
//go:embed testdata/ice.html
var icePage []byte

// An iceCandidate is one ICE candidate as the browser reports it: the
// fields of its RTCIceCandidate. Addresses are plain IPs (Chromium writes
// IPv6 ones in brackets; gatherICE removes them).
type iceCandidate struct {
	Candidate      string `json:"candidate"` // the candidate's SDP line
	Type           string `json:"type"`      // "host", "srflx", "prflx" or "relay"
	Address        string `json:"address"`   // for a srflx candidate, what the STUN server saw
	Port           int    `json:"port"`
	Protocol       string `json:"protocol"` // "udp" or "tcp"
	RelatedAddress string `json:"relatedAddress"`
	RelatedPort    int    `json:"relatedPort"`
	URL            string `json:"url"` // the STUN server a srflx candidate came from
}

// iceReport is what the page POSTs: the candidates, whether gathering
// completed or timed out, and the error that stopped it, if any.
type iceReport struct {
	State      string         `json:"state"` // "complete", "timeout" or "error"
	Candidates []iceCandidate `json:"candidates"`
	Error      string         `json:"error"`
}

// chromiumFlags run Debian's Chromium headless, as root, without a network
// beyond the lab's and without anything but the page talking to it.
var chromiumFlags = []string{
	"--headless",
	"--no-sandbox", // Chromium refuses to run as root with its sandbox on
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	// Host candidates with the interfaces' addresses rather than random
	// mDNS names, and a srflx candidate's related address with the host
	// address it was learnt from rather than 0.0.0.0: what a page sees once
	// it may use the camera, and what shows which namespace Chromium ran in.
	"--disable-features=WebRtcHideLocalIpsWithMdns",
}

const (
	// iceGatherTimeout is how long the page waits for gathering to complete
	// before it reports what it has.
	iceGatherTimeout = 10 * time.Second
	// chromiumTimeout bounds Chromium's start, the page's gathering and its
	// report together.
	chromiumTimeout = 45 * time.Second
)

// gatherICE runs headless Chromium inside h's namespace and returns the ICE
// candidates a page gathers with an RTCPeerConnection whose only ICE server
// is stunURL (e.g. "stun:198.51.100.7:3478"): a data channel, an offer set
// as local description, then every candidate until gathering completes or
// iceGatherTimeout passes. The page comes from an HTTP server on loopback
// inside the same namespace. The test fails, with Chromium's output, if
// Chromium does not report or the page hits an error. Chromium is killed and
// its profile removed before gatherICE returns.
func gatherICE(t testing.TB, h *Host, stunURL string) []iceCandidate {
	t.Helper()
	requireTool(t, "chromium", "chromium")

	reports := make(chan iceReport, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(icePage)
	})
	mux.HandleFunc("POST /candidates", func(w http.ResponseWriter, r *http.Request) {
		var rep iceReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			rep = iceReport{State: "error", Error: "the page posted invalid JSON: " + err.Error()}
		}
		select {
		case reports <- rep:
		default: // only the first report counts
		}
	})
	var l net.Listener
	if err := h.inNamespace(func() error {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatalf("%s: listen for the ICE page: %v", h.Role, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	// A profile of its own, which is also its home: what Chromium writes
	// outside the profile (its crash handler's database, dconf) stays in it.
	dir, err := os.MkdirTemp("", "stund-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove Chromium's profile: %v", err)
		}
	}()

	page := "http://" + l.Addr().String() + "/?" + url.Values{
		"stun":    {stunURL},
		"timeout": {strconv.Itoa(int(iceGatherTimeout / time.Millisecond))},
	}.Encode()
	args := []string{"HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "XDG_CACHE_HOME=" + dir, "chromium"}
	args = append(args, chromiumFlags...)
	args = append(args, "--user-data-dir="+dir, page)
	p := h.Start("env", args...) // env execs Chromium: the same process
	p.Name = h.Role + "/chromium"
	defer func() {
		if err := stopChromium(h, p, dir); err != nil {
			t.Errorf("%s: stop Chromium: %v", h.Role, err)
		}
	}()

	select {
	case rep := <-reports:
		if rep.State == "error" {
			t.Fatalf("%s: the ICE page failed: %s", h.Role, rep.Error)
		}
		for i := range rep.Candidates {
			c := &rep.Candidates[i]
			c.Address, c.RelatedAddress = strings.Trim(c.Address, "[]"), strings.Trim(c.RelatedAddress, "[]")
		}
		t.Logf("%s: Chromium gathered %d candidates with %s (gathering %s):\n%s",
			h.Role, len(rep.Candidates), stunURL, rep.State, formatCandidates(rep.Candidates))
		return rep.Candidates
	case <-p.done:
		t.Fatalf("%s: Chromium exited before the ICE page reported: %v\n%s", h.Role, p.err, tail(p.Output(), 4000))
	case <-time.After(chromiumTimeout):
		t.Fatalf("%s: no report from the ICE page after %s\n%s", h.Role, chromiumTimeout, tail(p.Output(), 4000))
	}
	return nil
}

// stopChromium kills Chromium and waits until no process of it is left: first
// its process group (the browser, its zygotes, renderers and utility
// processes), then its crash handlers, which start sessions of their own.
// Those are found, in h's namespace, by the profile directory their command
// lines name; dir is unique to this Chromium, so nothing else matches.
func stopChromium(h *Host, p *Proc, dir string) error {
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill Chromium's process group %d: %w", p.cmd.Process.Pid, err)
	}
	p.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := namingProcesses(h, dir)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of Chromium still run 5s after it was killed", pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// namingProcesses returns the processes in h's namespace whose command line
// contains s. A zombie's command line is empty: only live processes match.
func namingProcesses(h *Host, s string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", h.NS).Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w", h.NS, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if cmdline, err := os.ReadFile("/proc/" + f + "/cmdline"); err == nil && bytes.Contains(cmdline, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// srflxCandidates returns the server-reflexive candidates among cands: the
// addresses the STUN server saw.
func srflxCandidates(cands []iceCandidate) []iceCandidate {
	var out []iceCandidate
	for _, c := range cands {
		if c.Type == "srflx" {
			out = append(out, c)
		}
	}
	return out
}

// formatCandidates lists candidates one per line, for logs.
func formatCandidates(cands []iceCandidate) string {
	var b strings.Builder
	for _, c := range cands {
		fmt.Fprintf(&b, "\t%s %s %s", c.Type, c.Protocol, net.JoinHostPort(c.Address, strconv.Itoa(c.Port)))
		if c.RelatedAddress != "" {
			fmt.Fprintf(&b, " (related %s)", net.JoinHostPort(c.RelatedAddress, strconv.Itoa(c.RelatedPort)))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// checkTimeout bounds Chromium's start and the check page's run: the page
// gathers for at most 8s.
const checkTimeout = 15 * time.Second

// pageTarget is what the check page logged about one target.
type pageTarget struct {
	URL, Verdict, Reason, Mapped string
	Relay                        string   // a TURN server's relay candidate, IP:port, or "-"
	Errors                       []string // icecandidateerror codes
}

// pageResult is what the check page logged when it was done.
type pageResult struct {
	Verdict string
	Targets map[string]pageTarget
}

var (
	pageVerdictLine = regexp.MustCompile(`"stuncheck verdict: ([a-z]+)"`)
	pageTargetLine  = regexp.MustCompile(`"stuncheck target: (\S+) verdict=(\S+) reason=(\S+) mapped=(\S+) relay=(\S+) errors=(\S+)"`)
)

// runCheckPage runs headless Chromium in h's namespace on pageURL (the
// check page of stuncheck exporter or stuncheck web) and returns what the
// page logged to the console, read from Chromium's log on stderr: a line
// per target and the verdict line. The page sends nothing anywhere. The
// test fails unless the verdict line comes within checkTimeout.
func runCheckPage(t testing.TB, h *Host, pageURL string) pageResult {
	t.Helper()
	requireTool(t, "chromium", "chromium")
	dir, err := os.MkdirTemp("", "stund-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove Chromium's profile: %v", err)
		}
	}()
	args := []string{"HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "XDG_CACHE_HOME=" + dir, "chromium"}
	args = append(args, chromiumFlags...)
	args = append(args, "--enable-logging=stderr", "--v=0", "--user-data-dir="+dir, pageURL)
	start := time.Now()
	p := h.Start("env", args...)
	p.Name = h.Role + "/chromium"
	defer func() {
		if err := stopChromium(h, p, dir); err != nil {
			t.Errorf("%s: stop Chromium: %v", h.Role, err)
		}
	}()
	deadline := time.After(checkTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			out := p.Output()
			m := pageVerdictLine.FindStringSubmatch(out)
			if m == nil {
				continue
			}
			res := pageResult{Verdict: m[1], Targets: map[string]pageTarget{}}
			var lines []string
			for _, tm := range pageTargetLine.FindAllStringSubmatch(out, -1) {
				pt := pageTarget{URL: tm[1], Verdict: tm[2], Reason: tm[3], Mapped: tm[4], Relay: tm[5]}
				if tm[6] != "-" {
					pt.Errors = strings.Split(tm[6], ",")
				}
				res.Targets[pt.URL] = pt
				lines = append(lines, tm[0])
			}
			t.Logf("%s: the check page said %s after %s:\n\t%s", h.Role, res.Verdict,
				time.Since(start).Round(time.Millisecond), strings.Join(lines, "\n\t"))
			return res
		case <-p.done:
			t.Fatalf("%s: Chromium exited before the check page's verdict: %v\n%s", h.Role, p.err, tail(p.Output(), 4000))
		case <-deadline:
			t.Fatalf("%s: no verdict from the check page after %s\n%s", h.Role, checkTimeout, tail(p.Output(), 4000))
		}
	}
}
