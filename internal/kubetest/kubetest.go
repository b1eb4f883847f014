// Package kubetest is a stand-in Kubernetes API server for tests: it
// serves Nodes, Services, EndpointSlices and Events from objects the test
// gives it, with get, list, watch (including the watch-list streaming
// that client-go's informers use: sendInitialEvents and the
// initial-events-end bookmark) and create, so the real client-go stack
// (kubeconfig, HTTP, informers) runs against it. Resources can be
// forbidden, as RBAC would, with Forbid. It is not a conformant
// API server: no auth, no admission, JSON only, no field validation.
// HealthCheck stands in for kube-proxy's health check on a node.
package kubetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
)

// A resource the server knows.
type resource struct {
	name       string // URL segment: "nodes"
	prefix     string // "/api/v1" or "/apis/discovery.k8s.io/v1"
	apiVersion string
	kind       string
	namespaced bool
}

var resources = []resource{
	{"nodes", "/api/v1", "v1", "Node", false},
	{"services", "/api/v1", "v1", "Service", true},
	{"endpointslices", "/apis/discovery.k8s.io/v1", "discovery.k8s.io/v1", "EndpointSlice", true},
	{"events", "/api/v1", "v1", "Event", true},
}

func resourceOf(obj runtime.Object) (resource, metav1.Object) {
	var name string
	var m metav1.Object
	switch o := obj.(type) {
	case *corev1.Node:
		name, m = "nodes", o
	case *corev1.Service:
		name, m = "services", o
	case *discoveryv1.EndpointSlice:
		name, m = "endpointslices", o
	case *corev1.Event:
		name, m = "events", o
	default:
		panic(fmt.Sprintf("kubetest: unsupported object %T", obj))
	}
	for _, r := range resources {
		if r.name == name {
			return r, m
		}
	}
	panic("unreachable")
}

// event is one change, kept forever so a watch can resume from any
// resource version.
type event struct {
	rv   int64
	typ  string // ADDED, MODIFIED, DELETED
	res  string
	obj  runtime.Object
	meta metav1.Object
}

// Server is the stand-in API server. Create it with New.
type Server struct {
	mu       sync.Mutex
	rv       int64
	objects  map[string]map[string]runtime.Object // resource → namespace/name → object
	history  []event
	changed  chan struct{} // closed and replaced on every change
	requests []string
	hold     chan struct{}   // while non-nil, requests wait for it to close
	forbid   map[string]bool // resources answered 403 Forbidden
	done     chan struct{}
	closed   bool
	ts       *httptest.Server
	servers  []*http.Server
}

// New returns a server holding objs (Nodes, Services, EndpointSlices,
// Events). It does not listen yet: call Start or Serve.
func New(objs ...runtime.Object) *Server {
	s := &Server{objects: map[string]map[string]runtime.Object{}, changed: make(chan struct{}), done: make(chan struct{})}
	for _, r := range resources {
		s.objects[r.name] = map[string]runtime.Object{}
	}
	for _, o := range objs {
		s.Apply(o)
	}

	return s
}

// Start serves on a loopback port and returns the base URL.
func (s *Server) Start() string {
	s.ts = httptest.NewServer(s)

	return s.ts.URL
}

// Serve serves on l (e.g. a listener opened inside a network namespace)
// until Close.
func (s *Server) Serve(l net.Listener) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// Close ends every watch and stops serving.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	servers := s.servers
	s.mu.Unlock()
	for _, srv := range servers {
		_ = srv.Close()
	}
	if s.ts != nil {
		s.ts.Close()
	}
}

func key(m metav1.Object) string { return m.GetNamespace() + "/" + m.GetName() }

// Apply creates or replaces obj and tells the watches.
func (s *Server) Apply(obj runtime.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store(obj.DeepCopyObject())
}

// store saves obj (owned by the server); s.mu is held.
func (s *Server) store(obj runtime.Object) {
	r, m := resourceOf(obj)
	s.rv++
	m.SetResourceVersion(strconv.FormatInt(s.rv, 10))
	if m.GetUID() == "" {
		m.SetUID(types.UID(fmt.Sprintf("uid-%s-%s-%d", r.name, m.GetName(), s.rv)))
	}
	if ts := m.GetCreationTimestamp(); ts.IsZero() {
		m.SetCreationTimestamp(metav1.Now())
	}
	typ := "ADDED"
	if _, ok := s.objects[r.name][key(m)]; ok {
		typ = "MODIFIED"
	}
	s.objects[r.name][key(m)] = obj
	s.notify(event{rv: s.rv, typ: typ, res: r.name, obj: obj, meta: m})
}

// Delete removes obj (matched by kind, namespace and name).
func (s *Server) Delete(obj runtime.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, m := resourceOf(obj)
	old, ok := s.objects[r.name][key(m)]
	if !ok {
		return
	}
	delete(s.objects[r.name], key(m))
	s.rv++
	old = old.DeepCopyObject()
	_, om := resourceOf(old)
	om.SetResourceVersion(strconv.FormatInt(s.rv, 10))
	s.notify(event{rv: s.rv, typ: "DELETED", res: r.name, obj: old, meta: om})
}

func (s *Server) notify(ev event) {
	s.history = append(s.history, ev)
	close(s.changed)
	s.changed = make(chan struct{})
}

// Events returns the Events created through the API, oldest first.
func (s *Server) Events() []corev1.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []corev1.Event
	for _, ev := range s.history {
		if e, ok := ev.obj.(*corev1.Event); ok && ev.typ == "ADDED" {
			out = append(out, *e.DeepCopy())
		}
	}

	return out
}

// Requests returns every request so far as "METHOD path?query".
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()

	return slices.Clone(s.requests)
}

// Hold makes every request wait, as a slow or unreachable API server
// would, until the returned function is called.
func (s *Server) Hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.hold = ch
	var once sync.Once

	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.hold == ch {
				s.hold = nil
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

// Forbid makes every request for the named resources ("nodes",
// "services", "endpointslices", "events") answer 403 Forbidden, as the
// real API does for a ServiceAccount whose RBAC does not grant them.
func (s *Server) Forbid(resources ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forbid == nil {
		s.forbid = map[string]bool{}
	}
	for _, r := range resources {
		s.forbid[r] = true
	}
}

// forbidden words a 403 the way the real API server does.
func forbidden(r resource, ns, name, verb string) string {
	group, _ := strings.CutSuffix(r.apiVersion, "/v1")
	if group == "v1" {
		group = ""
	}
	what := r.name
	if group != "" {
		what += "." + group
	}
	if name != "" {
		what += fmt.Sprintf(" %q", name)
	}
	scope := "at the cluster scope"
	if ns != "" {
		scope = fmt.Sprintf("in the namespace %q", ns)
	}

	return fmt.Sprintf("%s is forbidden: User \"kubetest\" cannot %s resource %q in API group %q %s", what, verb, r.name, group, scope)
}

// WriteKubeconfig writes a kubeconfig for url to path, with one context,
// "kubetest", whose namespace is namespace.
func WriteKubeconfig(path, url, namespace string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
users:
- name: kubetest
  user:
    token: kubetest
contexts:
- name: kubetest
  context:
    cluster: kubetest
    user: kubetest
    namespace: %s
current-context: kubetest
`, url, namespace)

	return os.WriteFile(path, []byte(cfg), 0o600)
}

// ServeHTTP implements the API subset.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, req.Method+" "+req.URL.RequestURI())
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
			return
		case <-s.done:
			return
		}
	}
	if req.URL.Path == "/version" {
		writeJSON(w, http.StatusOK, map[string]string{"major": "1", "minor": "37", "gitVersion": "v1.37.0-kubetest"})

		return
	}
	r, ns, name, ok := route(req.URL.Path)
	if !ok {
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")

		return
	}
	q := req.URL.Query()
	s.mu.Lock()
	denied := s.forbid[r.name]
	s.mu.Unlock()
	if denied {
		verb := map[string]string{http.MethodGet: "get", http.MethodPost: "create"}[req.Method]
		switch {
		case verb == "get" && name == "" && (q.Get("watch") == "true" || q.Get("watch") == "1"):
			verb = "watch"
		case verb == "get" && name == "":
			verb = "list"
		}
		writeStatus(w, http.StatusForbidden, "Forbidden", forbidden(r, ns, name, verb))

		return
	}
	switch {
	case req.Method == http.MethodGet && name != "":
		s.get(w, r, ns, name)
	case req.Method == http.MethodGet && (q.Get("watch") == "true" || q.Get("watch") == "1"):
		s.watch(w, req, r, ns)
	case req.Method == http.MethodGet:
		s.list(w, req, r, ns)
	case req.Method == http.MethodPost && name == "":
		s.create(w, req, r, ns)
	default:
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", req.Method+" is not supported by kubetest")
	}
}

// route splits an API path into resource, namespace and name.
func route(path string) (resource, string, string, bool) {
	for _, r := range resources {
		rest, ok := strings.CutPrefix(path, r.prefix+"/")
		if !ok {
			continue
		}
		var ns string
		if r.namespaced {
			after, ok := strings.CutPrefix(rest, "namespaces/")
			if !ok {
				continue
			}
			ns, rest, ok = strings.Cut(after, "/")
			if !ok {
				continue
			}
		}
		res, name, _ := strings.Cut(rest, "/")
		if res == r.name && !strings.Contains(name, "/") {
			return r, ns, name, true
		}
	}

	return resource{}, "", "", false
}

// encode renders obj with its apiVersion and kind.
func encode(r resource, obj runtime.Object) map[string]any {
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	m["apiVersion"], m["kind"] = r.apiVersion, r.kind

	return m
}

func (s *Server) get(w http.ResponseWriter, r resource, ns, name string) {
	s.mu.Lock()
	obj, ok := s.objects[r.name][ns+"/"+name]
	var m map[string]any
	if ok {
		m = encode(r, obj)
	}
	s.mu.Unlock()
	if !ok {
		writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", r.name, name))

		return
	}
	writeJSON(w, http.StatusOK, m)
}

// selector filters objects by namespace and the request's label and
// field selectors.
type selector struct {
	ns     string
	labels labels.Selector
	fields fields.Selector
}

func newSelector(req *http.Request, ns string) (selector, error) {
	q := req.URL.Query()
	ls, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return selector{}, fmt.Errorf("labelSelector: %w", err)
	}
	fs, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return selector{}, fmt.Errorf("fieldSelector: %w", err)
	}

	return selector{ns: ns, labels: ls, fields: fs}, nil
}

func (sel selector) matches(m metav1.Object) bool {
	if sel.ns != "" && m.GetNamespace() != sel.ns {
		return false
	}

	return sel.labels.Matches(labels.Set(m.GetLabels())) &&
		sel.fields.Matches(fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()})
}

// current returns the matching objects, sorted by key; s.mu is held.
func (s *Server) current(r resource, sel selector) []map[string]any {
	keys := make([]string, 0, len(s.objects[r.name]))
	for k := range s.objects[r.name] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	items := []map[string]any{}
	for _, k := range keys {
		obj := s.objects[r.name][k]
		if _, m := resourceOf(obj); sel.matches(m) {
			items = append(items, encode(r, obj))
		}
	}

	return items
}

func (s *Server) list(w http.ResponseWriter, req *http.Request, r resource, ns string) {
	sel, err := newSelector(req, ns)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())

		return
	}
	s.mu.Lock()
	items := s.current(r, sel)
	rv := s.rv
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"apiVersion": r.apiVersion, "kind": r.kind + "List",
		"metadata": map[string]any{"resourceVersion": strconv.FormatInt(rv, 10)},
		"items":    items,
	})
}

// watch streams changes. With sendInitialEvents=true (watch-list) it
// first sends every matching object as ADDED and then a BOOKMARK
// annotated k8s.io/initial-events-end; without a resourceVersion it sends
// the objects as ADDED too, as the real API does; with one it replays the
// changes after it.
func (s *Server) watch(w http.ResponseWriter, req *http.Request, r resource, ns string) {
	sel, err := newSelector(req, ns)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())

		return
	}
	q := req.URL.Query()
	ctx := req.Context()
	if t, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Second)
		defer cancel()
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(typ string, obj map[string]any) bool {
		if err := enc.Encode(map[string]any{"type": typ, "object": obj}); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}

		return true
	}

	s.mu.Lock()
	var from int64
	var initial []map[string]any
	rv := q.Get("resourceVersion")
	watchList := q.Get("sendInitialEvents") == "true"
	if watchList || rv == "" || rv == "0" {
		initial = s.current(r, sel)
		from = s.rv
	} else if from, err = strconv.ParseInt(rv, 10, 64); err != nil {
		s.mu.Unlock()

		return
	}
	s.mu.Unlock()
	for _, obj := range initial {
		if !send("ADDED", obj) {
			return
		}
	}
	if watchList {
		bookmark := map[string]any{
			"apiVersion": r.apiVersion, "kind": r.kind,
			"metadata": map[string]any{
				"resourceVersion": strconv.FormatInt(from, 10),
				"annotations":     map[string]string{metav1.InitialEventsAnnotationKey: "true"},
			},
		}
		if !send("BOOKMARK", bookmark) {
			return
		}
	}
	for {
		s.mu.Lock()
		var pending []event
		for _, ev := range s.history {
			if ev.rv > from && ev.res == r.name {
				pending = append(pending, ev)
			}
		}
		changed := s.changed
		var encoded []map[string]any
		for _, ev := range pending {
			encoded = append(encoded, encode(r, ev.obj))
		}
		s.mu.Unlock()
		for i, ev := range pending {
			from = ev.rv
			if sel.matches(ev.meta) && !send(ev.typ, encoded[i]) {
				return
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

func (s *Server) create(w http.ResponseWriter, req *http.Request, r resource, ns string) {
	if r.name != "events" {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "kubetest creates only events")

		return
	}
	// client-go sends built-in types as protobuf, or JSON when told to.
	body, err := io.ReadAll(req.Body)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())

		return
	}
	var ev corev1.Event
	if _, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, &ev); err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())

		return
	}
	if ev.Namespace == "" {
		ev.Namespace = ns
	}
	if ev.Namespace != ns || ev.Name == "" {
		writeStatus(w, http.StatusUnprocessableEntity, "Invalid", "event needs a name and the namespace of the URL")

		return
	}
	s.mu.Lock()
	if _, exists := s.objects["events"][key(&ev)]; exists {
		s.mu.Unlock()
		writeStatus(w, http.StatusConflict, "AlreadyExists", fmt.Sprintf("events %q already exists", ev.Name))

		return
	}
	ev.TypeMeta = metav1.TypeMeta{}
	stored := ev.DeepCopy()
	s.store(stored)
	m := encode(r, stored)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, m)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, map[string]any{
		"apiVersion": "v1", "kind": "Status", "status": "Failure",
		"reason": reason, "message": msg, "code": code,
	})
}
