// Package kube holds no code: its tests prove the Kubernetes manifests of
// deploy/kubernetes and the Helm chart of deploy/helm/vaurien with the
// real libraries (Helm's template engine and linter, client-go's scheme),
// which no package of the binary imports.
package kube
