// Package e2e holds sqlraft's end-to-end tests on real containers: three
// sqlraftd containers on a private Docker network, bootstrapping through DNS
// discovery, exercised over gRPC. The tests are behind the e2e build tag:
//
//	go test -tags e2e -count=1 -timeout 20m -v ./test/e2e
//
// They build the static binary and the image during the run. When no Docker
// engine answers they print one SKIP line with the reason and pass.
package e2e
