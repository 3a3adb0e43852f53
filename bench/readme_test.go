package bench

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestREADME: bench/README.md's tables list every workload of the suite
// and every setting the suite reads, with the default the code has.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // the first backquoted name of a table row → the row
	for _, line := range strings.Split(string(readme), "\n") {
		if m := regexp.MustCompile("^\\| `([^`]+)`").FindStringSubmatch(line); m != nil {
			rows[m[1]] = line
		}
	}
	inRow := func(name string) bool {
		for _, row := range rows {
			if strings.Contains(row, "`"+name+"`") {
				return true
			}
		}
		return false
	}

	suite, err := os.ReadFile("suite_test.go")
	if err != nil {
		t.Fatal(err)
	}
	body := string(suite)[strings.Index(string(suite), "func BenchmarkSuite("):]
	body = body[:strings.Index(body, "\n}\n")]
	workloads := regexp.MustCompile(`b\.Run\("([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(workloads) < 10 {
		t.Fatalf("found %d workloads in BenchmarkSuite", len(workloads))
	}
	for _, w := range workloads {
		if !inRow(w[1]) {
			t.Errorf("workload %s is in no table of README.md", w[1])
		}
	}

	files, _ := filepath.Glob("*.go")
	setting := regexp.MustCompile(`env(?:Int|Duration|String)\("([A-Z_]+)", ([^)]*)\)`)
	seen := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range setting.FindAllStringSubmatch(string(src), -1) {
			seen++
			row, ok := rows[m[1]]
			if !ok {
				t.Errorf("setting %s (%s) has no row in README.md", m[1], f)
				continue
			}
			if def, ok := literal(m[2]); ok && strings.TrimSpace(strings.Split(row, "|")[2]) != def {
				t.Errorf("README.md gives %s the default %q; %s has %s", m[1], strings.Split(row, "|")[2], f, def)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("found %d settings", seen)
	}
}

// literal renders a default written as a number, a shift or a count of
// seconds the way README.md writes it.
func literal(expr string) (string, bool) {
	if m := regexp.MustCompile(`^(\d+)\s*\*\s*time\.Second$`).FindStringSubmatch(expr); m != nil {
		return m[1] + "s", true
	}
	if m := regexp.MustCompile(`^(\d+)\s*<<\s*(\d+)$`).FindStringSubmatch(expr); m != nil {
		a, _ := strconv.ParseInt(m[1], 10, 64)
		b, _ := strconv.Atoi(m[2])
		return strconv.FormatInt(a<<b, 10), true
	}
	if _, err := strconv.Atoi(expr); err == nil {
		return expr, true
	}
	return "", false
}
