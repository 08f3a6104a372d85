package cni

// FaultEnv names the ADD steps to fail, comma-separated: link, addr, neigh, default-route,
// route, rule, result. Only a binary built with -tags flatnetfaults honours it (faults_on.go),
// as the tests build theirs; the release binary compiles the hook to nothing (faults_off.go).
const FaultEnv = "FLATNET_CNI_FAULT"
