package kubeclass

import (
	"bytes"
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	"k8s.io/client-go/kubernetes"

	"github.com/stund/stund/internal/cluster"
	"github.com/stund/stund/internal/cluster/clustertest"
	"github.com/stund/stund/internal/kubetest"
	"github.com/stund/stund/internal/stund/server"
)

// realClient serves sampleCluster from a stand-in API server and returns
// it with a client built the way stund builds one: kubeconfig file →
// ServerConfig → NewClient.
func realClient(t *testing.T) (*kubetest.Server, kubernetes.Interface) {
	t.Helper()
	api := kubetest.New(sampleCluster()...)
	url := api.Start()
	t.Cleanup(api.Close)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kubetest.WriteKubeconfig(kc, url, clustertest.NS); err != nil {
		t.Fatal(err)
	}
	rc, err := cluster.ServerConfig(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cluster.NewClient(rc, "stund-test")
	if err != nil {
		t.Fatal(err)
	}

	return api, cs
}

// The real client-go stack: kubeconfig file → HTTP → informers that fill
// their caches with the watch-list stream (sendInitialEvents and the
// initial-events-end bookmark), against the stand-in API server.
func TestRealClientPath(t *testing.T) {
	api, cs := realClient(t)
	log := &syncBuffer{}
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = log
	lf.DefaultLogLevel = logging.LogLevelDebug
	c, err := New(Config{Client: cs, Namespace: clustertest.NS, Services: []string{"stund"}, LoggerFactory: lf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
	defer scancel()
	if !c.WaitForSync(sctx) {
		t.Fatalf("informers did not sync; requests:\n%s", strings.Join(api.Requests(), "\n"))
	}
	if got := c.Observe(netip.MustParseAddr("10.1.0.2")); got != server.ClassNode {
		t.Errorf("node address classified %s", got)
	}
	if got := c.Classify(netip.MustParseAddr("198.51.100.7")); got != server.ClassLB {
		t.Errorf("ingress address classified %s", got)
	}

	// Each informer streamed its initial state (watch-list) instead of
	// listing, with the selectors that limit it to our Service.
	reqs := api.Requests()
	for _, want := range []string{
		"GET /api/v1/nodes?",
		"GET /api/v1/namespaces/lab/services?",
		"GET /apis/discovery.k8s.io/v1/namespaces/lab/endpointslices?",
	} {
		i := slices.IndexFunc(reqs, func(r string) bool { return strings.HasPrefix(r, want) })
		if i < 0 {
			t.Errorf("no request %s...\n%s", want, strings.Join(reqs, "\n"))

			continue
		}
		for _, q := range []string{"watch=true", "sendInitialEvents=true", "allowWatchBookmarks=true", "resourceVersionMatch=NotOlderThan"} {
			if !strings.Contains(reqs[i], q) {
				t.Errorf("first request %q lacks %s: not the watch-list path", reqs[i], q)
			}
		}
	}
	for _, r := range reqs {
		if strings.HasPrefix(r, "GET ") && !strings.Contains(r, "watch=true") {
			t.Errorf("informer listed instead of streaming: %s", r)
		}
		if strings.Contains(r, "/services?") && !strings.Contains(r, "fieldSelector=metadata.name%3Dstund") {
			t.Errorf("Service watch without a field selector: %s", r)
		}
		if strings.Contains(r, "/endpointslices?") && !strings.Contains(r, "labelSelector=kubernetes.io%2Fservice-name+in+%28stund%29") {
			t.Errorf("EndpointSlice watch without the service-name selector: %s", r)
		}
	}

	// Changes arrive over the open watch.
	api.Apply(clustertest.Node("worker-9", "10.1.0.9", ""))
	eventually(t, "node added through the watch", func() bool { return c.Classify(netip.MustParseAddr("10.1.0.9")) == server.ClassNode })
	api.Delete(clustertest.Node("worker-1", "", ""))
	eventually(t, "node deleted through the watch", func() bool { return c.Classify(netip.MustParseAddr("10.1.0.2")) == server.ClassPrivate })

	// The first rewritten source (worker-1's, above) recorded an Event
	// through the API.
	eventually(t, "Event", func() bool { return len(api.Events()) == 1 }, log, &syncBuffer{b: *bytes.NewBufferString(strings.Join(api.Requests(), "\n"))})
	ev := api.Events()[0]
	if ev.Reason != EventReason || ev.InvolvedObject.Name != "stund" || !strings.Contains(ev.Message, `node "worker-1"`) || ev.InvolvedObject.UID == "" {
		t.Errorf("Event %+v", ev)
	}
}

// An API server that does not answer never delays classification; the
// Event waits in its own goroutine.
func TestSlowAPIDoesNotDelay(t *testing.T) {
	api, cs := realClient(t)
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = &syncBuffer{}
	c, err := New(Config{Client: cs, Namespace: clustertest.NS, Services: []string{"stund"}, LoggerFactory: lf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	if !c.WaitForSync(ctx) {
		t.Fatal("no sync")
	}
	release := api.Hold()
	defer release()
	done := make(chan server.SourceClass)
	go func() {
		var last server.SourceClass
		for range 1000 {
			last = c.Observe(netip.MustParseAddr("10.1.0.2"))
		}
		done <- last
	}()
	select {
	case got := <-done:
		if got != server.ClassNode {
			t.Errorf("classified %s while the API hangs", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Observe blocked while the API server hangs")
	}
	if n := len(api.Events()); n != 0 {
		t.Fatalf("Event written while the API is held: %d", n)
	}
	release()
	eventually(t, "Event once the API answers", func() bool { return len(api.Events()) == 1 })
}
