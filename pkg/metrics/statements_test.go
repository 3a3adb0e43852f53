package metrics_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/metrics"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// TestStatementsThroughPostgres: a real postgres route and a real server;
// the statement series follow what the client ran and what was injected.
func TestStatementsThroughPostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	e, err := chaos.NewEntry("error", 100, nil, chaos.MatchSpec{Commands: []string{"UPDATE"}})
	if err != nil {
		t.Fatal(err)
	}
	mx, err := chaos.NewMix([]chaos.Entry{e})
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, m, proxy.RouteConfig{Name: "db", Protocol: "postgres", Backend: pg.Addr, Mix: mx})
	ctx := context.Background()
	c, err := pgx.Connect(ctx, "postgres://postgres@"+s.Route("db").Addr()+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "create table t (x int)", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Exec(ctx, "update t set x = 1", pgx.QueryExecModeSimpleProtocol); err == nil {
			t.Fatal("an UPDATE passed a 100% error mix")
		}
		if _, err := c.Exec(ctx, "select 1", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the statements counted", func() bool {
		return sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": "SELECT"}) == 3 &&
			sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": "UPDATE"}) == 3 &&
			sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": "CREATE"}) == 1
	})
	if got := sample(t, reg, "vaurien_statement_faults_injected_total", labels{"route": "db", "behavior": "error", "command": "UPDATE"}); got != 3 {
		t.Errorf("UPDATE faults = %v, want 3", got)
	}
	if got := sample(t, reg, "vaurien_statement_faults_injected_total", labels{"route": "db", "behavior": "error", "command": "SELECT"}); got != -1 {
		t.Errorf("SELECT faults = %v, want no series", got)
	}
	if got := sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": "STARTUP"}); got != 1 {
		t.Errorf("startups = %v, want 1", got)
	}
}
