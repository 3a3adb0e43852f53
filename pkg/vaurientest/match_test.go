package vaurientest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/vaurientest"
)

// Matching limits a behavior to some requests: the others pass untouched
// and are not counted as faults.
func TestMatchLimitsFaultsToMatchingRequests(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer web.Close()
	rds := testenv.Redis(t)
	p := vaurientest.Start(t, fmt.Sprintf(`
route "api" {
  listen   = "127.0.0.1:0"
  backend  = %q
  protocol = "http"
  behavior "error" {
    percent = 100
    status  = [503]
    match {
      method = "POST"
      path   = "/api/*"
    }
  }
}
route "cache" {
  listen   = "127.0.0.1:0"
  backend  = %q
  protocol = "redis"
  behavior "error" {
    percent = 100
    message = "READONLY You can't write against a read only replica."
    match {
      command = ["set", "del"]
    }
  }
}`, web.Listener.Addr().String(), rds.Addr))

	base := "http://" + p.Addr("api")
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/orders", 200},
		{"POST", "/api/orders", 503},
		{"POST", "/api/orders/7/lines", 503},
		{"POST", "/health", 200},
		{"PUT", "/api/orders", 200},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}
	r, err := p.App.Route("api")
	if err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Faults != 2 || st.Requests != 5 {
		t.Errorf("api route: %d faults over %d requests, want 2 over 5", st.Faults, st.Requests)
	}

	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: p.Addr("cache")})
	defer rc.Close()
	err = rc.Set(ctx, "k", "v", 0).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
		t.Fatalf("SET through a matched error: %v, want the READONLY error", err)
	}
	if err := rc.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("GET is not matched and must reach redis: %v", err)
	}
}
