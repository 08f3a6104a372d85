package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// keyPair is a certificate with its key, in memory and as written to disk.
type keyPair struct {
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	certPEM  []byte
	keyPEM   []byte
	certPath string
	keyPath  string
}

// pki is the control plane's credentials: one CA signs the API server's serving certificate
// and every client certificate; the service-account key pair signs and checks tokens.
type pki struct {
	dir        string
	ca         keyPair
	apiserver  keyPair
	admin      keyPair
	controller keyPair
	scheduler  keyPair
	// kubeletClient is the API server's client certificate for the node agents' log API
	// (--kubelet-client-certificate): in system:masters, as kubeadm's apiserver-kubelet-client.
	kubeletClient keyPair
	// The aggregation layer's front proxy: a CA of its own, and the client certificate the API
	// server presents to extension API servers.
	frontProxyCA keyPair
	frontProxy   keyPair
	saKey        string // service-account signing key (PEM, PKCS#8)
	saPub        string // its public half (PEM, PKIX)
}

// frontProxyClient is the front proxy's user name, the one extension API servers accept.
const frontProxyClient = "front-proxy-client"

// certLifetime is long enough for any lab; the lab's credentials die with its directory.
const certLifetime = 365 * 24 * time.Hour

// newPKI generates the control plane's credentials into dir. apiserverIPs are the serving
// certificate's addresses: the control plane's VPC address, the first service address (the
// in-cluster "kubernetes" Service) and loopback (the host's port-forward).
func newPKI(dir string, apiserverIPs []net.IP) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	p := &pki{dir: dir}
	var err error
	if p.ca, err = p.issue("ca", &x509.Certificate{
		Subject:               pkix.Name{CommonName: "flatnet-lab-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil); err != nil {
		return nil, err
	}
	if p.apiserver, err = p.issue("apiserver", &x509.Certificate{
		Subject: pkix.Name{CommonName: "kube-apiserver"},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: apiserverIPs,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &p.ca); err != nil {
		return nil, err
	}
	// The API server maps a client certificate's CN to the user and O to its groups; these are
	// the identities the default RBAC bindings name.
	clients := []struct {
		kp     *keyPair
		name   string
		user   string
		groups []string
	}{
		{&p.admin, "admin", "flatnet-lab-admin", []string{"system:masters"}},
		{&p.controller, "controller-manager", "system:kube-controller-manager", nil},
		{&p.scheduler, "scheduler", "system:kube-scheduler", nil},
		{&p.kubeletClient, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}},
	}
	for _, c := range clients {
		if *c.kp, err = p.issue(c.name, &x509.Certificate{
			Subject:     pkix.Name{CommonName: c.user, Organization: c.groups},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, &p.ca); err != nil {
			return nil, err
		}
	}
	if p.frontProxyCA, err = p.issue("front-proxy-ca", &x509.Certificate{
		Subject:               pkix.Name{CommonName: "flatnet-lab-front-proxy-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil); err != nil {
		return nil, err
	}
	if p.frontProxy, err = p.issue("front-proxy-client", &x509.Certificate{
		Subject:     pkix.Name{CommonName: frontProxyClient},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &p.frontProxyCA); err != nil {
		return nil, err
	}
	if err := p.serviceAccountKeys(); err != nil {
		return nil, err
	}
	return p, nil
}

// issue makes a key and a certificate from tmpl, signed by parent (self-signed when nil), and
// writes both as <name>.crt and <name>.key.
func (p *pki) issue(name string, tmpl *x509.Certificate, parent *keyPair) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("generate the %s key: %w", name, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return keyPair{}, fmt.Errorf("draw a serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour) // tolerate a little clock skew
	tmpl.NotAfter = time.Now().Add(certLifetime)
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		return keyPair{}, fmt.Errorf("sign the %s certificate: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, fmt.Errorf("parse the %s certificate: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return keyPair{}, fmt.Errorf("encode the %s key: %w", name, err)
	}
	kp := keyPair{
		cert: cert, key: key,
		certPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		certPath: filepath.Join(p.dir, name+".crt"),
		keyPath:  filepath.Join(p.dir, name+".key"),
	}
	if err := os.WriteFile(kp.certPath, kp.certPEM, 0o644); err != nil {
		return keyPair{}, fmt.Errorf("write %s: %w", kp.certPath, err)
	}
	if err := os.WriteFile(kp.keyPath, kp.keyPEM, 0o600); err != nil {
		return keyPair{}, fmt.Errorf("write %s: %w", kp.keyPath, err)
	}
	return kp, nil
}

func (p *pki) serviceAccountKeys() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate the service-account key: %w", err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode the service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("encode the service-account public key: %w", err)
	}
	p.saKey, p.saPub = filepath.Join(p.dir, "sa.key"), filepath.Join(p.dir, "sa.pub")
	if err := os.WriteFile(p.saKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", p.saKey, err)
	}
	if err := os.WriteFile(p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p.saPub, err)
	}
	return nil
}

// kubeconfig is the subset of the kubeconfig format the lab writes. JSON is valid YAML, so
// kubectl and client-go read it as they read any kubeconfig.
type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
	Preferences    struct{}       `json:"preferences"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		CertificateAuthorityData []byte `json:"certificate-authority-data"`
	} `json:"cluster"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		ClientCertificateData []byte `json:"client-certificate-data"`
		ClientKeyData         []byte `json:"client-key-data"`
	} `json:"user"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	} `json:"context"`
}

// writeKubeconfig writes a self-contained kubeconfig (credentials embedded) for user at server.
func (p *pki) writeKubeconfig(path, server, user string, kp keyPair) error {
	const name = "flatnet-lab"
	var cl namedCluster
	cl.Name = name
	cl.Cluster.Server = server
	cl.Cluster.CertificateAuthorityData = p.ca.certPEM
	var u namedUser
	u.Name = user
	u.User.ClientCertificateData, u.User.ClientKeyData = kp.certPEM, kp.keyPEM
	var c namedContext
	c.Name = name
	c.Context.Cluster, c.Context.User = name, user
	body, err := json.MarshalIndent(kubeconfig{
		APIVersion: "v1", Kind: "Config", Clusters: []namedCluster{cl}, Users: []namedUser{u},
		Contexts: []namedContext{c}, CurrentContext: name,
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(body, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the kubeconfig %s: %w", path, err)
	}
	return nil
}
