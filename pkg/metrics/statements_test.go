package metrics_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/metrics"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// errorOnUpdate is a mix whose error fault strikes every UPDATE and
// nothing else.
func errorOnUpdate(t *testing.T) *chaos.Mix {
	t.Helper()
	e, err := chaos.NewEntry("error", 100, nil, chaos.MatchSpec{Commands: []string{"UPDATE"}})
	if err != nil {
		t.Fatal(err)
	}
	mx, err := chaos.NewMix([]chaos.Entry{e})
	if err != nil {
		t.Fatal(err)
	}
	return mx
}

// TestStatementsThroughPostgres: a real postgres route and a real server;
// the statement series follow what the client ran and what was injected.
func TestStatementsThroughPostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	s := serve(t, m, proxy.RouteConfig{Name: "db", Protocol: "postgres", Backend: pg.Addr, Mix: errorOnUpdate(t)})
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

// TestStatementsThroughMySQL: the same through a real mysql route and
// MariaDB, text and prepared statements, and a statement whose first word
// is no keyword counted as OTHER.
func TestStatementsThroughMySQL(t *testing.T) {
	srv := testenv.MariaDB(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	s := serve(t, m, proxy.RouteConfig{Name: "db", Protocol: "mysql", Backend: srv.Addr, Mix: errorOnUpdate(t)})
	db, err := sql.Open("mysql", testenv.MariaDBNativeUser+":"+testenv.MariaDBPassword+"@tcp("+s.Route("db").Addr()+")/"+testenv.MariaDBDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE t (x INT)"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		var me *mysql.MySQLError
		if _, err := db.Exec("UPDATE t SET x = 1"); !errors.As(err, &me) || me.Number != 1213 {
			t.Fatalf("an UPDATE through a 100%% error mix gave %v, want the deadlock error", err)
		}
		if err := db.QueryRow("SELECT 1").Scan(new(int)); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT ?", i).Scan(new(int)); err != nil { // prepared
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("FROBNICATE t"); err == nil {
		t.Fatal("the server ran FROBNICATE")
	}
	eventually(t, "the statements counted", func() bool {
		return sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": "SELECT"}) == 6 &&
			sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": "UPDATE"}) == 3 &&
			sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": "CREATE"}) == 1 &&
			sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": "STMT_PREPARE"}) == 3 &&
			sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": "OTHER"}) == 1
	})
	if got := sample(t, reg, "vaurien_statement_faults_injected_total", labels{"route": "db", "behavior": "error", "command": "UPDATE"}); got != 3 {
		t.Errorf("UPDATE faults = %v, want 3", got)
	}
	if got := sample(t, reg, "vaurien_statement_faults_injected_total", labels{"route": "db", "behavior": "error", "command": "SELECT"}); got != -1 {
		t.Errorf("SELECT faults = %v, want no series", got)
	}
}

// TestStatementCatchAll: each database protocol counts a command outside
// its declared set as OTHER, whatever order it declares the set in.
func TestStatementCatchAll(t *testing.T) {
	for _, tt := range []struct {
		protocol, command, counted string
	}{
		{"postgres", "UPDATE", "UPDATE"},
		{"postgres", "STARTUP", "STARTUP"},
		{"postgres", "OTHER", "OTHER"},
		{"postgres", "update t set a = 1", "OTHER"},
		{"postgres", "", "OTHER"},
		{"mysql", "UPDATE", "UPDATE"},
		{"mysql", "XA", "XA"},
		{"mysql", "STMT_PREPARE", "STMT_PREPARE"},
		{"mysql", "OTHER", "OTHER"},
		{"mysql", "COM_0XFF", "OTHER"},
		{"mysql", "", "OTHER"},
	} {
		t.Run(tt.protocol+"/"+tt.command, func(t *testing.T) {
			spec, ok := chaos.LookupProtocol(tt.protocol)
			if !ok || spec.OtherCommand != "OTHER" {
				t.Fatalf("protocol %s: registered %v, catch-all %q; want OTHER", tt.protocol, ok, spec.OtherCommand)
			}
			reg := prometheus.NewRegistry()
			db := metrics.New(reg).Route("db", tt.protocol)
			db.Exchanged(&chaos.Request{Command: tt.command}, time.Millisecond)
			db.Injected("error", &chaos.Request{Command: tt.command})
			if got := sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": tt.counted}); got != 1 {
				t.Errorf("statements{command=%s} = %v, want 1", tt.counted, got)
			}
			if got := sample(t, reg, "vaurien_statement_faults_injected_total", labels{"route": "db", "behavior": "error", "command": tt.counted}); got != 1 {
				t.Errorf("statement faults{command=%s} = %v, want 1", tt.counted, got)
			}
		})
	}
}
