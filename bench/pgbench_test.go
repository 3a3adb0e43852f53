package bench

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// pgbenchWorkload runs pgbench's TPC-B-like transaction with 8 clients for
// cfg.pgbenchDuration in a query mode (simple or prepared) against a
// PostgreSQL initialised at scale 10. Its unit is a transaction: five
// statements between BEGIN and END.
func pgbenchWorkload(b *testing.B, cfg config, rep *report, mode string) {
	start := time.Now()
	load := loadAvg()
	tool := testenv.LookPath(b, "pgbench")
	srv := testenv.Postgres(b)
	pgbench(b, tool, srv.Addr, "-i", "-q", "-s", "10")
	targets := proxies(b, srv.Addr, cfg.others(b),
		vaurienRoute{"vaurien", "tcp", ""},
		vaurienRoute{"vaurien-postgres", "postgres", ""},
		vaurienRoute{"vaurien-postgres-mix", "postgres", cfg.faultMix})
	args := []string{"-c", "8", "-j", "2", "-T", strconv.Itoa(int(cfg.pgbenchDuration.Seconds())), "-M", mode}
	rows := summarize(interleave(b, cfg, targets, func(b *testing.B, t *target) outcome {
		out := pgbench(b, tool, t.addr, args...)
		r, err := parsePgbench(out)
		if err != nil {
			b.Fatalf("pgbench through %s: %v\n%s", t.name, err, out)
		}
		if r.failed > 0 {
			b.Fatalf("pgbench through %s: %d failed transactions\n%s", t.name, r.failed, out)
		}
		return outcome{units: float64(r.transactions), rate: r.tps}
	}))
	reportMetrics(b, rows, "tx/s", "tx")
	rep.add(&table{
		title: "pgbench TPC-B-like, 8 clients, " + mode + " protocol", rateUnit: "tx/s", unit: "tx", rows: rows,
		load: [2]string{load, loadAvg()}, took: time.Since(start),
		command: "pgbench -h 127.0.0.1 -p PORT " + strings.Join(args, " ") + " on a database initialised with pgbench -i -s 10 (" + toolVersion(tool, "--version") + ")",
	})
}

// pgbench runs the tool against addr as the postgres user.
func pgbench(b *testing.B, tool, addr string, args ...string) string {
	host, port := hostPort(addr)
	cmd := exec.Command(tool, args...)
	cmd.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGUSER=postgres", "PGDATABASE=postgres", "PGSSLMODE=disable")
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench %s through %s: %v\n%s", strings.Join(args, " "), addr, err, out)
	}
	return string(out)
}

type pgbenchResult struct {
	transactions, failed int64
	tps                  float64
}

var (
	pgbenchProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	pgbenchFailed    = regexp.MustCompile(`number of failed transactions: (\d+)`)
	pgbenchTPS       = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
)

// parsePgbench reads pgbench's summary.
func parsePgbench(out string) (pgbenchResult, error) {
	var r pgbenchResult
	m, t := pgbenchProcessed.FindStringSubmatch(out), pgbenchTPS.FindStringSubmatch(out)
	if m == nil || t == nil {
		return r, fmt.Errorf("no transaction count or tps in pgbench's output")
	}
	r.transactions, _ = strconv.ParseInt(m[1], 10, 64)
	r.tps, _ = strconv.ParseFloat(t[1], 64)
	if f := pgbenchFailed.FindStringSubmatch(out); f != nil {
		r.failed, _ = strconv.ParseInt(f[1], 10, 64)
	}
	return r, nil
}
