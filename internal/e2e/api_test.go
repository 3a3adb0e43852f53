package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// apiStack is a running vaurien with its admin API, its Toxiproxy API and a
// route of the file, "file", to an echo server.
type apiStack struct {
	t                  *testing.T
	v                  *vaurien
	path, head         string
	admin, toxi, route string // addresses
	echo               string
}

func startAPIStack(t *testing.T) *apiStack {
	t.Helper()
	s := &apiStack{t: t, admin: freeAddr(t), toxi: freeAddr(t), route: freeAddr(t), echo: echoServer(t)}
	s.head = fmt.Sprintf("admin {\n  listen = %q\n}\ntoxiproxy {\n  listen = %q\n}\ndrain = \"1s\"\n", s.admin, s.toxi)
	s.path = filepath.Join(t.TempDir(), "vaurien.hcl")
	writeConfig(t, s.path, s.head+routeBlock("file", s.route, s.echo, "  default = true\n"))
	s.v = start(t, "", "run", "-c", s.path)
	s.v.waitLog(`"vaurien started"`, 10*time.Second)
	return s
}

// call sends a request and returns the status and body.
func (s *apiStack) call(method, url, body string, header ...string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *apiStack) adminURL(path string) string { return "http://" + s.admin + path }
func (s *apiStack) toxiURL(path string) string  { return "http://" + s.toxi + path }

// must sends a request that has to succeed with want.
func (s *apiStack) must(method, url, body string, want int) string {
	s.t.Helper()
	code, got := s.call(method, url, body)
	if code != want {
		s.t.Fatalf("%s %s %s: %d %s; want %d", method, url, body, code, got, want)
	}
	return got
}

// state is everything both APIs show, less the counters, which traffic
// changes: what a rejected call must leave as it was.
func (s *apiStack) state() string {
	s.t.Helper()
	var routes struct {
		Routes []map[string]any `json:"routes"`
	}
	if err := json.Unmarshal([]byte(s.must("GET", s.adminURL("/routes"), "", 200)), &routes); err != nil {
		s.t.Fatal(err)
	}
	for _, r := range routes.Routes {
		delete(r, "stats")
	}
	var proxies map[string]any
	if err := json.Unmarshal([]byte(s.must("GET", s.toxiURL("/proxies"), "", 200)), &proxies); err != nil {
		s.t.Fatal(err)
	}
	b, _ := json.MarshalIndent(map[string]any{"routes": routes.Routes, "proxies": proxies}, "", " ")
	return string(b)
}

// rejected is one call that must fail and change nothing.
type rejected struct {
	name              string
	method, url, body string
	status            int
	message           string // a part of the error text
}

// checkRejected runs each call, checks its answer, and that both APIs
// show the same state afterwards and the routes still relay.
func (s *apiStack) checkRejected(t *testing.T, cases []rejected, live ...string) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.state()
			code, body := s.call(tc.method, tc.url, tc.body)
			if code != tc.status || !strings.Contains(message(body), tc.message) {
				t.Errorf("%s %s %s:\n got %d %s\nwant %d with %q", tc.method, tc.url, tc.body, code, body, tc.status, tc.message)
			}
			if after := s.state(); after != before {
				t.Errorf("state changed by a rejected call:\nbefore %s\nafter  %s", before, after)
			}
			for _, addr := range live {
				testenv.Echoes(t, addr)
			}
		})
	}
}

// message is the error text of an answer of either API, or the answer.
func message(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) == nil && e.Error != "" {
		return e.Error
	}
	return body
}

func (s *apiStack) writeFile(content string) {
	writeConfig(s.t, s.path, s.head+content)
}

// A call that fails, on either API or through a reload, leaves every
// route and proxy exactly as it was: same address, upstream, enabled
// state, mix and toxics, still relaying.
func TestRejectedChangesLeaveEverythingAsItWas(t *testing.T) {
	s := startAPIStack(t)
	busy, other := testenv.Taken(t), echoServer(t)
	q1 := freeAddr(t)
	s.must("POST", s.toxiURL("/proxies"), fmt.Sprintf(`{"name":"q1","listen":%q,"upstream":%q}`, q1, s.echo), 201)
	s.must("POST", s.toxiURL("/proxies/q1/toxics"), `{"type":"latency","attributes":{"latency":1}}`, 200)
	// q2 is disabled, and its address is then taken by another process.
	q2ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	q2 := q2ln.Addr().String()
	q2ln.Close()
	s.must("POST", s.toxiURL("/proxies"), fmt.Sprintf(`{"name":"q2","listen":%q,"upstream":%q,"enabled":false}`, q2, s.echo), 201)
	taken, err := net.Listen("tcp", q2)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s.must("PUT", s.adminURL("/routes/file/mix"), `{"behaviors":[{"name":"delay","percent":10,"options":{"sleep":"1ms"}}]}`, 200)

	s.checkRejected(t, []rejected{
		{name: "toxiproxy: move a proxy to a taken address (POST)", method: "POST", url: s.toxiURL("/proxies/q1"),
			body: fmt.Sprintf(`{"listen":%q}`, busy), status: 500, message: "address already in use"},
		{name: "toxiproxy: move a proxy to a taken address (PATCH)", method: "PATCH", url: s.toxiURL("/proxies/q1"),
			body: fmt.Sprintf(`{"listen":%q,"upstream":%q}`, busy, other), status: 500, message: "address already in use"},
		{name: "toxiproxy: move and disable a proxy, to a taken address", method: "POST", url: s.toxiURL("/proxies/q1"),
			body: fmt.Sprintf(`{"listen":%q,"enabled":false}`, busy), status: 500, message: "address already in use"},
		{name: "toxiproxy: enable a proxy whose address was taken", method: "POST", url: s.toxiURL("/proxies/q2"),
			body: `{"enabled":true}`, status: 500, message: "address already in use"},
		{name: "toxiproxy: enable a proxy whose address was taken, with a new upstream", method: "POST", url: s.toxiURL("/proxies/q2"),
			body: fmt.Sprintf(`{"enabled":true,"upstream":%q}`, s.route), status: 500, message: "address already in use"},
		{name: "toxiproxy: a proxy to itself", method: "POST", url: s.toxiURL("/proxies/q1"),
			body: fmt.Sprintf(`{"upstream":%q}`, q1), status: 400, message: "vaurien's own listener"},
		{name: "toxiproxy: a file route to the admin API", method: "POST", url: s.toxiURL("/proxies/file"),
			body: fmt.Sprintf(`{"upstream":%q}`, s.admin), status: 400, message: "vaurien's own listener"},
		{name: "toxiproxy: a new proxy on a taken address", method: "POST", url: s.toxiURL("/proxies"),
			body: fmt.Sprintf(`{"name":"q3","listen":%q,"upstream":%q}`, busy, s.echo), status: 500, message: "address already in use"},
		{name: "toxiproxy: populate moves a proxy to a taken address", method: "POST", url: s.toxiURL("/populate"),
			body: fmt.Sprintf(`[{"name":"q1","listen":%q,"upstream":%q}]`, busy, s.echo), status: 500, message: "address already in use"},
		{name: "toxiproxy: reset cannot enable a proxy", method: "POST", url: s.toxiURL("/reset"),
			status: 500, message: "address already in use"},
		{name: "admin: enable a route whose address was taken", method: "POST", url: s.adminURL("/routes/q2/enable"),
			status: 409, message: "address already in use"},
		{name: "admin: reset cannot enable a route", method: "POST", url: s.adminURL("/reset"),
			status: 409, message: "address already in use"},
		{name: "admin: reset of one route that cannot listen", method: "POST", url: s.adminURL("/routes/q2/reset"),
			status: 409, message: "address already in use"},
		{name: "admin: a route to itself", method: "PUT", url: s.adminURL("/routes/file/backend"),
			body: fmt.Sprintf(`{"backend":%q}`, s.route), status: 400, message: "vaurien's own listener"},
		{name: "admin: a route to a Toxiproxy proxy", method: "PUT", url: s.adminURL("/routes/file/backend"),
			body: fmt.Sprintf(`{"backend":%q}`, q1), status: 400, message: `(route "q1")`},
		{name: "admin: the original PUT /backend to the Toxiproxy API", method: "PUT", url: s.adminURL("/backend"),
			body: fmt.Sprintf(`{"backend":%q}`, s.toxi), status: 400, message: "the Toxiproxy API"},
	}, s.route, q1)

	// Reloads that cannot be applied.
	reloads := []struct {
		name, file, message string
	}{
		{"a route moves to a taken address", routeBlock("file", busy, s.echo, ""), "address already in use"},
		{"a new route on a taken address", routeBlock("file", s.route, s.echo, "") + routeBlock("new", busy, s.echo, ""), "address already in use"},
		{"a route to itself", routeBlock("file", s.route, s.route, ""), "Backend is vaurien itself"},
		{"a route to the Toxiproxy API", routeBlock("file", s.route, s.toxi, ""), "where the Toxiproxy API listens"},
		{"a route to a proxy of the Toxiproxy API", routeBlock("file", s.route, q1, ""), `(route "q1")`},
	}
	var cases []rejected
	for _, r := range reloads {
		cases = append(cases, rejected{name: "reload: " + r.name, method: "POST", url: s.adminURL("/reload"), status: 422, message: r.message})
	}
	for i, tc := range cases {
		s.writeFile(reloads[i].file)
		s.checkRejected(t, []rejected{tc}, s.route, q1)
	}
}

// The self-loop is refused through every door: the file (validate and
// run), a reload, both admin endpoints that set a backend, and the
// Toxiproxy API's upstream on create, update and populate.
func TestBackendThatIsVaurienItselfIsRefusedEverywhere(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, file, message string
	}{
		{"the route's own listener", routeBlock("cache", "0.0.0.0:16380", "127.0.0.1:16380", ""), `reaches "0.0.0.0:16380", where route "cache" listens`},
		{"another route's listener", routeBlock("a", "127.0.0.1:16381", "localhost:16382", "") + routeBlock("b", ":16382", "127.0.0.1:1", ""), `where route "b" listens`},
		{"the admin API", "admin {\n  listen = \"127.0.0.1:18080\"\n}\n" + routeBlock("a", "127.0.0.1:16381", "127.0.0.1:18080", ""), "where the admin API listens"},
	} {
		t.Run("validate and run: "+tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "loop.hcl")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"validate", "run"} {
				out, err := exec.Command(binary, cmd, "-c", path).CombinedOutput()
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), tc.message) || !strings.Contains(string(out), "loop.hcl:") {
					t.Errorf("vaurien %s: %v\n%s\nwant a failure naming the file's line and %q", cmd, err, out, tc.message)
				}
			}
		})
	}

	s := startAPIStack(t)
	q1 := freeAddr(t)
	s.checkRejected(t, []rejected{
		{name: "toxiproxy: create with upstream = listen", method: "POST", url: s.toxiURL("/proxies"),
			body: fmt.Sprintf(`{"name":"q1","listen":%q,"upstream":%q}`, q1, q1), status: 400, message: "vaurien's own listener"},
		{name: "toxiproxy: create to the file's route", method: "POST", url: s.toxiURL("/proxies"),
			body: fmt.Sprintf(`{"name":"q1","listen":%q,"upstream":%q}`, q1, s.route), status: 400, message: `(route "file")`},
		{name: "toxiproxy: populate with upstream = listen", method: "POST", url: s.toxiURL("/populate"),
			body: fmt.Sprintf(`[{"name":"q1","listen":%q,"upstream":"localhost:%s"}]`, q1, q1[strings.LastIndexByte(q1, ':')+1:]), status: 400, message: "vaurien's own listener"},
		{name: "admin: PUT /routes/file/backend to itself", method: "PUT", url: s.adminURL("/routes/file/backend"),
			body: fmt.Sprintf(`{"backend":%q}`, s.route), status: 400, message: "vaurien's own listener"},
		{name: "admin: original PUT /backend to the admin API", method: "PUT", url: s.adminURL("/backend"),
			body: fmt.Sprintf(`{"backend":%q}`, s.admin), status: 400, message: "the admin API"},
	}, s.route)
	s.must("POST", s.toxiURL("/proxies"), fmt.Sprintf(`{"name":"q1","listen":%q,"upstream":%q}`, q1, s.echo), 201)
	s.checkRejected(t, []rejected{
		{name: "toxiproxy: update upstream to its own listen", method: "POST", url: s.toxiURL("/proxies/q1"),
			body: fmt.Sprintf(`{"upstream":%q}`, q1), status: 400, message: "vaurien's own listener"},
		{name: "toxiproxy: update listen onto its upstream", method: "PATCH", url: s.toxiURL("/proxies/q1"),
			body: fmt.Sprintf(`{"listen":"127.0.0.1:%d","upstream":"127.0.0.1:%[1]d"}`, 16390), status: 400, message: "vaurien's own listener"},
		{name: "toxiproxy: populate changes the upstream to itself", method: "POST", url: s.toxiURL("/populate"),
			body: fmt.Sprintf(`[{"name":"q1","listen":%q,"upstream":%q}]`, q1, q1), status: 400, message: "vaurien's own listener"},
	}, s.route, q1)
	s.writeFile(routeBlock("file", s.route, s.route, ""))
	s.checkRejected(t, []rejected{{name: "reload: the file's route to itself", method: "POST", url: s.adminURL("/reload"), status: 422, message: "Backend is vaurien itself"}}, s.route, q1)
}

// A number out of its option's declared range is refused with the range,
// the same way through every door: HCL, the original's flags, the admin
// API and the Toxiproxy API; nothing overflows into a value that means
// something else.
func TestNumbersOutOfRangeAreRefusedEverywhere(t *testing.T) {
	const sleepRange = "out of range; want from 0s to 100000h0m0s"
	dir := t.TempDir()
	for _, tc := range []struct{ name, value string }{
		{"seconds", "1e12"},
		{"a duration string", `"9999999h"`},
		{"a duration string over the range", `"100001h"`},
		{"a negative duration", `"-1s"`},
	} {
		t.Run("validate: "+tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "range.hcl")
			file := routeBlock("a", "127.0.0.1:16400", "127.0.0.1:6379", "  behavior \"delay\" {\n    percent = 10\n    sleep   = "+tc.value+"\n  }\n")
			if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(binary, "validate", "-c", path).CombinedOutput()
			want := sleepRange
			if tc.value == `"-1s"` {
				want = "out of range; want from 0s"
			}
			if err == nil || !strings.Contains(string(out), want) {
				t.Errorf("validate sleep = %s: %v\n%s\nwant a failure with %q", tc.value, err, out, want)
			}
		})
	}
	t.Run("flags", func(t *testing.T) {
		out, err := exec.Command(binary, "--proxy", "127.0.0.1:0", "--backend", "127.0.0.1:6379",
			"--behavior", "100:delay", "--behavior-delay-sleep", "1e12").CombinedOutput()
		if err == nil || !strings.Contains(string(out), `"1e12" is `+sleepRange) {
			t.Errorf("--behavior-delay-sleep 1e12: %v\n%s", err, out)
		}
	})

	s := startAPIStack(t)
	q1 := freeAddr(t)
	s.must("POST", s.toxiURL("/proxies"), fmt.Sprintf(`{"name":"q1","listen":%q,"upstream":%q}`, q1, s.echo), 201)
	s.must("POST", s.toxiURL("/proxies/q1/toxics"), `{"name":"slow","type":"latency","attributes":{"latency":1}}`, 200)
	mix := func(opts string) string {
		return `{"behaviors":[{"name":"delay","percent":10,"options":` + opts + `}]}`
	}
	s.checkRejected(t, []rejected{
		{name: "admin: sleep in seconds", method: "PUT", url: s.adminURL("/routes/file/mix"), body: mix(`{"sleep":1e12}`), status: 400, message: "1e+12 seconds is " + sleepRange},
		{name: "admin: sleep as a string", method: "PUT", url: s.adminURL("/routes/file/mix"), body: mix(`{"sleep":"9999999h"}`), status: 400, message: `"9999999h" is ` + sleepRange},
		{name: "admin: jitter over the range", method: "PUT", url: s.adminURL("/routes/file/mix"), body: mix(`{"jitter":"100001h"}`), status: 400, message: "100001h0m0s is " + sleepRange},
		{name: "admin: probability over 1", method: "PUT", url: s.adminURL("/routes/file/mix"), body: `{"behaviors":[{"name":"corrupt","percent":10,"options":{"probability":2}}]}`, status: 400, message: "2 is out of range; want from 0 to 1"},
		{name: "admin: status outside 400–599", method: "PUT", url: s.adminURL("/routes/file/mix"), body: `{"behaviors":[{"name":"error","percent":10,"options":{"status":[503,200]}}]}`, status: 400, message: "200 is out of range; want from 400 to 599"},
		{name: "admin: slicer average_size 0", method: "PUT", url: s.adminURL("/routes/file/mix"), body: `{"behaviors":[{"name":"slicer","percent":10,"options":{"average_size":0}}]}`, status: 400, message: "0 is out of range; want from 1 to 32768"},
		{name: "original: PUT /behavior sleep in seconds", method: "PUT", url: s.adminURL("/behavior"), body: `{"name":"delay","sleep":1e12}`, status: 400, message: "out of range"},
		{name: "toxiproxy: latency that would overflow", method: "POST", url: s.toxiURL("/proxies/q1/toxics"), body: `{"type":"latency","attributes":{"latency":9223372036855}}`, status: 400, message: `attribute "latency" is 9223372036855, out of range; want from 0 to 360000000000`},
		{name: "toxiproxy: update to a latency that would overflow", method: "POST", url: s.toxiURL("/proxies/q1/toxics/slow"), body: `{"attributes":{"latency":9223372036855}}`, status: 400, message: "out of range"},
		{name: "toxiproxy: toxicity above 1", method: "POST", url: s.toxiURL("/proxies/q1/toxics"), body: `{"type":"latency","toxicity":1.5}`, status: 400, message: "toxicity 1.5 is out of range; want from 0 to 1"},
		{name: "toxiproxy: update toxicity below 0", method: "PATCH", url: s.toxiURL("/proxies/q1/toxics/slow"), body: `{"toxicity":-1}`, status: 400, message: "toxicity -1 is out of range"},
		{name: "toxiproxy: slicer average_size 0", method: "POST", url: s.toxiURL("/proxies/q1/toxics"), body: `{"type":"slicer","attributes":{"average_size":0}}`, status: 400, message: `attribute "average_size" is 0; it must be at least 1`},
		{name: "toxiproxy: a bad type is a 400 even when the name is taken", method: "POST", url: s.toxiURL("/proxies/q1/toxics"), body: `{"name":"slow","type":"latency","attributes":{"latency":"1"}}`, status: 400, message: "bad request body"},
	}, s.route, q1)
}
