// Package deploy holds no code: it is the home of the files an operator
// copies to monitor vaurien (the Prometheus scrape configuration and alert
// rules, the Grafana dashboard and its provisioning) and of the tests that
// prove them against a real Prometheus scraping a running vaurien.
package deploy
