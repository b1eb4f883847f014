package exporter

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stund/stund/internal/stuncheck/web"
)

// probeRecord is one probe the page lists.
type probeRecord struct {
	When       time.Time
	Module     string
	Target     string
	Transports string
	Outcome    outcome
	Error      string
}

// history keeps the last historySize probes.
type history struct {
	mu      sync.Mutex
	records []probeRecord
}

func (h *history) add(r probeRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	if len(h.records) > historySize {
		h.records = slices.Delete(h.records, 0, len(h.records)-historySize)
	}
}

// recent returns the records, newest first.
func (h *history) recent() []probeRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.records)
	slices.Reverse(out)

	return out
}

// moduleView is what the page shows of a module: never a secret.
type moduleView struct {
	Name, Transports, Timeout, PublicIP string
	Targets                             []string
	TURN                                string
}

type recordView struct {
	probeRecord
	Success  bool
	Duration string
	Summary  string
	Link     string
}

func (e *Exporter) servePage(w http.ResponseWriter, _ *http.Request) {
	f := e.file.Load()
	var mods []moduleView
	for _, name := range f.Order {
		m := f.Modules[name]
		v := moduleView{Name: name, Transports: joinTransports(m.Transports), Timeout: m.Timeout.String(), Targets: m.Targets}
		var src []string
		for _, ip := range m.ExpectIPs {
			src = append(src, ip.String())
		}
		switch {
		case m.References == nil:
			src = append(src, "default references")
		case len(m.References) > 0:
			src = append(src, "references "+strings.Join(m.References, ", "))
		}
		v.PublicIP = strings.Join(src, "; ")
		if m.TURN != nil {
			kind := "username and password"
			if m.TURN.REST {
				kind = "REST shared secret"
			}
			v.TURN = kind + " (from " + strings.SplitN(m.TURN.From, " ", 2)[0] + ")"
		}
		mods = append(mods, v)
	}
	var recs []recordView
	for _, r := range e.history.recent() {
		rv := recordView{probeRecord: r, Success: r.Outcome.success(), Duration: r.Outcome.Duration.Round(time.Millisecond).String()}
		var parts []string
		for _, res := range r.Outcome.Results {
			parts = append(parts, res.Transport+"/"+res.Family+" "+string(res.Verdict)+" ("+string(res.Reason)+")")
		}
		rv.Summary = strings.Join(parts, ", ")
		if r.Error != "" {
			rv.Summary = r.Error
		}
		q := url.Values{"module": {r.Module}, "target": {r.Target}, "transport": {r.Transports}}
		rv.Link = "/probe?" + q.Encode()
		recs = append(recs, rv)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.Execute(w, struct {
		Modules []moduleView
		Recent  []recordView
		Config  string
	}{mods, recs, e.cfg.ConfigFile})
}

// serveCheck serves the browser check (internal/stuncheck/web): the page
// runs in the browser and contacts only the servers in its query string.
func serveCheck(w http.ResponseWriter, _ *http.Request) {
	page, err := web.Page()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)

		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(page)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>stuncheck exporter</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.ok{color:#070}.fail{color:#a00}</style>
</head>
<body>
<h1>stuncheck exporter</h1>
<p>Does the path to a STUN server keep the client's source address?
<a href="/probe?target=stun.example.com">/probe?target=…</a> runs one check;
<a href="/check">/check</a> runs it in this browser;
<a href="/metrics">/metrics</a> has the exporter's own metrics; <a href="/healthz">/healthz</a>.</p>
<h2>Modules</h2>
<p>{{if .Config}}From {{.Config}} (reload with SIGHUP or POST /-/reload).{{else}}Built in: no --config given.{{end}}</p>
<table>
<tr><th>Module</th><th>Transports</th><th>Timeout</th><th>Public IP</th><th>Targets</th><th>TURN credentials</th></tr>
{{range .Modules}}<tr><td>{{.Name}}</td><td>{{.Transports}}</td><td>{{.Timeout}}</td><td>{{.PublicIP}}</td><td>{{if .Targets}}{{range .Targets}}{{.}}<br>{{end}}{{else}}any{{end}}</td><td>{{if .TURN}}{{.TURN}}{{else}}none{{end}}</td></tr>
{{end}}</table>
<h2>Recent probes</h2>
{{if .Recent}}<table>
<tr><th>Time</th><th>Module</th><th>Target</th><th>Result</th><th>Duration</th><th>Probes</th></tr>
{{range .Recent}}<tr><td>{{.When.UTC.Format "2006-01-02 15:04:05Z"}}</td><td>{{.Module}}</td><td><a href="{{.Link}}">{{.Target}}</a></td><td>{{if .Success}}<span class="ok">success</span>{{else}}<span class="fail">failure</span>{{end}}</td><td>{{.Duration}}</td><td>{{.Summary}}</td></tr>
{{end}}</table>{{else}}<p>None yet.</p>{{end}}
</body>
</html>
`))
