package kubetest_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/stund/stund/internal/kubetest"
)

func client(t *testing.T) (*kubetest.Server, kubernetes.Interface) {
	t.Helper()
	s := kubetest.New(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"zone": "x"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"zone": "y"}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "stund", Namespace: "lab"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "lab"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "stund", Namespace: "elsewhere"}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: "lab",
			Labels: map[string]string{discoveryv1.LabelServiceName: "stund"}}},
	)
	url := s.Start()
	t.Cleanup(s.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: url})
	if err != nil {
		t.Fatal(err)
	}

	return s, cs
}

func TestGetListSelectors(t *testing.T) {
	_, cs := client(t)
	ctx := context.Background()
	if svc, err := cs.CoreV1().Services("lab").Get(ctx, "stund", metav1.GetOptions{}); err != nil || svc.Namespace != "lab" || svc.UID == "" || svc.ResourceVersion == "" {
		t.Errorf("get: %+v, %v", svc, err)
	}
	if _, err := cs.CoreV1().Services("lab").Get(ctx, "nope", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("missing Service: %v, want NotFound", err)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "zone=y"})
	if err != nil || len(nodes.Items) != 1 || nodes.Items[0].Name != "b" {
		t.Errorf("label selector: %+v, %v", nodes, err)
	}
	svcs, err := cs.CoreV1().Services("lab").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=stund"})
	if err != nil || len(svcs.Items) != 1 || svcs.Items[0].Namespace != "lab" {
		t.Errorf("field selector in a namespace: %+v, %v", svcs, err)
	}
	eps, err := cs.DiscoveryV1().EndpointSlices("lab").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=stund"})
	if err != nil || len(eps.Items) != 1 {
		t.Errorf("EndpointSlices: %+v, %v", eps, err)
	}
}

func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}

		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event")
	}

	return watch.Event{}
}

// A watch-list request streams the objects, then the initial-events-end
// bookmark, then changes; a watch from a resource version replays what
// came after it.
func TestWatchList(t *testing.T) {
	s, cs := client(t)
	ctx := context.Background()
	w, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{
		SendInitialEvents: ptr.To(true), ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan, AllowWatchBookmarks: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, want := range []string{"a", "b"} {
		if ev := next(t, w); ev.Type != watch.Added || ev.Object.(*corev1.Node).Name != want {
			t.Fatalf("initial event %v %v, want ADDED %s", ev.Type, ev.Object, want)
		}
	}
	bm := next(t, w)
	n, _ := bm.Object.(*corev1.Node)
	if bm.Type != watch.Bookmark || n == nil || n.Annotations[metav1.InitialEventsAnnotationKey] != "true" || n.ResourceVersion == "" {
		t.Fatalf("after the initial events: %v %+v, want the initial-events-end bookmark", bm.Type, bm.Object)
	}
	s.Apply(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "c"}})
	if ev := next(t, w); ev.Type != watch.Added || ev.Object.(*corev1.Node).Name != "c" {
		t.Errorf("change: %v %v", ev.Type, ev.Object)
	}
	s.Delete(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}})
	if ev := next(t, w); ev.Type != watch.Deleted || ev.Object.(*corev1.Node).Name != "a" {
		t.Errorf("delete: %v %v", ev.Type, ev.Object)
	}

	// Resume from the bookmark's version: c added, a deleted.
	w2, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: n.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	if ev := next(t, w2); ev.Type != watch.Added || ev.Object.(*corev1.Node).Name != "c" {
		t.Errorf("replay: %v %v", ev.Type, ev.Object)
	}
	if ev := next(t, w2); ev.Type != watch.Deleted {
		t.Errorf("replay: %v", ev.Type)
	}
}

func TestEvents(t *testing.T) {
	s, cs := client(t)
	ctx := context.Background()
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: "lab"}, Reason: "SourceIPRewritten"}
	if _, err := cs.CoreV1().Events("lab").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Events("lab").Create(ctx, ev, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	if evs := s.Events(); len(evs) != 1 || evs[0].Reason != "SourceIPRewritten" {
		t.Errorf("Events() = %+v", evs)
	}
}

// A forbidden resource answers 403 to every verb, worded as the real API
// server words it; the others are still served.
func TestForbid(t *testing.T) {
	s, cs := client(t)
	s.Forbid("nodes", "endpointslices")
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"list nodes": func() error { _, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); return err },
		"get node":   func() error { _, err := cs.CoreV1().Nodes().Get(ctx, "a", metav1.GetOptions{}); return err },
		"watch nodes": func() error {
			w, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}

			return err
		},
		"list EndpointSlices": func() error {
			_, err := cs.DiscoveryV1().EndpointSlices("lab").List(ctx, metav1.ListOptions{})

			return err
		},
	} {
		if err := call(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden", name, err)
		}
	}
	_, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if want := `nodes is forbidden: User "kubetest" cannot list resource "nodes" in API group "" at the cluster scope`; err == nil || err.Error() != want {
		t.Errorf("list nodes: %v, want %q", err, want)
	}
	_, err = cs.DiscoveryV1().EndpointSlices("lab").List(ctx, metav1.ListOptions{})
	if want := `endpointslices.discovery.k8s.io is forbidden: User "kubetest" cannot list resource "endpointslices" in API group "discovery.k8s.io" in the namespace "lab"`; err == nil || err.Error() != want {
		t.Errorf("list EndpointSlices: %v, want %q", err, want)
	}
	if _, err := cs.CoreV1().Services("lab").Get(ctx, "stund", metav1.GetOptions{}); err != nil {
		t.Errorf("Services are not forbidden: %v", err)
	}
}
