package ipamd

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flatnet/flatnet/ipamd/nodenet/fastpath"
)

// fastPathStatser is the part of the datapath that reports the BPF fast path (nodenet.Node).
type fastPathStatser interface {
	FastPathStats() (fastpath.Stats, bool)
}

// fastPathView is /v1/fastpath.
type fastPathView struct {
	// Mode is the configured --fast-path; Running says whether it is loaded.
	Mode    string `json:"mode"`
	Running bool   `json:"running"`
	fastpath.Stats
}

func (d *Daemon) fastPathView() fastPathView {
	v := fastPathView{Mode: d.cfg.FastPath}
	if fs, ok := d.dp.(fastPathStatser); ok {
		v.Stats, v.Running = fs.FastPathStats()
	}
	return v
}

func (d *Daemon) serveFastPath(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, d.fastPathView())
}

// fastPathCollector exports the fast path's counters at scrape time.
type fastPathCollector struct{ d *Daemon }

var (
	fastPathPacketsDesc = prometheus.NewDesc("flatnet_ipamd_fastpath_packets_total",
		"Packets seen by the node's BPF fast path, by verdict: to_pod, to_cloud and resolving_neighbour were forwarded by it, every other verdict names why a packet went on to the node's IP stack.",
		[]string{"verdict"}, nil)
	fastPathLinksDesc = prometheus.NewDesc("flatnet_ipamd_fastpath_links",
		"Links the fast path is attached to, by kind (pod veth, cloud interface).", []string{"kind"}, nil)
)

func (c fastPathCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- fastPathPacketsDesc
	ch <- fastPathLinksDesc
}

func (c fastPathCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.d.fastPathView()
	if !v.Running {
		return
	}
	for _, name := range fastpath.Verdicts() {
		ch <- prometheus.MustNewConstMetric(fastPathPacketsDesc, prometheus.CounterValue, float64(v.Packets[name]), name)
	}
	ch <- prometheus.MustNewConstMetric(fastPathLinksDesc, prometheus.GaugeValue, float64(v.PodLinks), "pod")
	ch <- prometheus.MustNewConstMetric(fastPathLinksDesc, prometheus.GaugeValue, float64(v.CloudLinks), "cloud")
}
