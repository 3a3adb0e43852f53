package bench

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// mysqlslapWorkload runs mysqlslap's generated primary-key reads with 8
// clients against MariaDB: cfg.mysqlslapQueries queries in all. Its unit
// is a query.
func mysqlslapWorkload(b *testing.B, cfg config, rep *report) {
	start := time.Now()
	load := loadAvg()
	tool := testenv.LookPath(b, "mysqlslap")
	srv := testenv.MariaDB(b)
	targets := proxies(b, srv.Addr, cfg.others(b),
		vaurienRoute{"vaurien", "tcp", ""},
		vaurienRoute{"vaurien-mysql", "mysql", ""},
		vaurienRoute{"vaurien-mysql-mix", "mysql", cfg.faultMix})
	args := []string{"--concurrency=8", "--iterations=1", "--number-of-queries=" + strconv.Itoa(cfg.mysqlslapQueries),
		"--auto-generate-sql", "--auto-generate-sql-load-type=key", "--auto-generate-sql-add-autoincrement"}
	rows := summarize(interleave(b, cfg, targets, func(b *testing.B, t *target) outcome {
		out := mysqlslap(b, tool, t.addr, args...)
		secs, err := parseMysqlslap(out)
		if err != nil {
			b.Fatalf("mysqlslap through %s: %v\n%s", t.name, err, out)
		}
		return outcome{units: float64(cfg.mysqlslapQueries), took: time.Duration(secs * float64(time.Second))}
	}))
	reportMetrics(b, rows, "queries/s", "query")
	rep.add(&table{
		title: "mysqlslap primary-key reads, 8 clients", rateUnit: "queries/s", unit: "query", rows: rows,
		load: [2]string{load, loadAvg()}, took: time.Since(start),
		command: "mysqlslap -h 127.0.0.1 -P PORT " + strings.Join(args, " ") + " against MariaDB (" + toolVersion(tool, "--version") + ")",
	})
}

// mysqlslap runs the tool against addr; it exits non-zero on any error, and
// then the run fails.
func mysqlslap(b *testing.B, tool, addr string, args ...string) string {
	host, port := hostPort(addr)
	cmd := exec.Command(tool, append([]string{"-h" + host, "-P" + port, "-u" + testenv.MariaDBNativeUser,
		"-p" + testenv.MariaDBPassword, "--create-schema=slap"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("mysqlslap %s through %s: %v\n%s", strings.Join(args, " "), addr, err, out)
	}
	return string(out)
}

var mysqlslapAverage = regexp.MustCompile(`Average number of seconds to run all queries: ([0-9.]+) seconds`)

// parseMysqlslap reads the time mysqlslap's run took.
func parseMysqlslap(out string) (float64, error) {
	m := mysqlslapAverage.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no run time in mysqlslap's output")
	}
	secs, err := strconv.ParseFloat(m[1], 64)
	if err != nil || secs <= 0 {
		return 0, fmt.Errorf("run time %q in mysqlslap's output is not a duration", m[1])
	}
	return secs, nil
}
