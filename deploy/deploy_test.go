// Package deploy holds the deployment files' checks: there is no Docker
// daemon or Kubernetes cluster in CI, so these tests read the files and
// check what they must agree on with the code.
package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func readYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var docs []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			require.ErrorContains(t, err, "EOF", path)
			return docs
		}
		docs = append(docs, d)
	}
}

// dig follows keys (strings for maps, ints for lists) into v.
func dig(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestDockerfileBuildsAsCIDoes(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	df := string(b)
	assert.Contains(t, df, "sh deploy/build.sh /out", "the image's binaries are built by the script CI runs")
	assert.Contains(t, df, "USER 65532:65532", "non-root")
	assert.Contains(t, df, "distroless/static")
	build, err := os.ReadFile("build.sh")
	require.NoError(t, err)
	assert.Contains(t, string(build), "CGO_ENABLED=0", "static")
}

func TestComposeStartsFourTLSNodesAndAClient(t *testing.T) {
	docs := readYAML(t, "../compose.yaml")
	require.Len(t, docs, 1)
	services, _ := docs[0]["services"].(map[string]any)
	var nodes []string
	for name := range services {
		if strings.HasPrefix(name, "node") {
			nodes = append(nodes, name)
		}
	}
	assert.Len(t, nodes, 4)
	for _, n := range nodes {
		env, _ := dig(services, n, "environment").(map[string]any)
		for _, k := range []string{"DSYNC_TLS_CERT", "DSYNC_TLS_KEY", "DSYNC_TLS_CLIENT_CA", "DSYNC_SECRET_FILE"} {
			assert.NotEmpty(t, env[k], "%s: %s", n, k)
		}
	}
	clientNodes, _ := dig(services, "client", "environment", "DSYNC_NODES").(string)
	assert.Equal(t, 4, strings.Count(clientNodes, "https://"), "the client knows every node, over TLS")
	assert.NotNil(t, services["certs"], "certificates made in the compose file")
}

func TestKubernetesManifests(t *testing.T) {
	byKind := map[string]map[string]any{}
	files, err := filepath.Glob("kubernetes/*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		for _, d := range readYAML(t, f) {
			if k, ok := d["kind"].(string); ok {
				byKind[k] = d
			}
		}
	}
	sts, svc, pdb := byKind["StatefulSet"], byKind["Service"], byKind["PodDisruptionBudget"]
	require.NotNil(t, sts)
	require.NotNil(t, svc)
	require.NotNil(t, pdb)
	require.NotNil(t, byKind["ServiceMonitor"])

	replicas := dig(sts, "spec", "replicas").(int)
	assert.Equal(t, 4, replicas)
	assert.Equal(t, replicas/2+1, dig(pdb, "spec", "minAvailable"), "the budget keeps a write quorum")
	assert.Equal(t, "None", dig(svc, "spec", "clusterIP"), "headless: a stable name per node")
	assert.Equal(t, true, dig(svc, "spec", "publishNotReadyAddresses"), "holders reach a node in its grace")
	assert.Equal(t, dig(svc, "metadata", "name"), dig(sts, "spec", "serviceName"))

	c := dig(sts, "spec", "template", "spec", "containers", 0)
	assert.Equal(t, "/readyz?grace=fail", dig(c, "readinessProbe", "httpGet", "path"))
	assert.Equal(t, "/healthz", dig(c, "livenessProbe", "httpGet", "path"))
	env := map[string]any{}
	for _, e := range dig(c, "env").([]any) {
		env[dig(e, "name").(string)] = e
	}
	for _, k := range []string{"DSYNC_NODE_ID", "DSYNC_STATE_DIR", "DSYNC_TLS_CERT", "DSYNC_TLS_CLIENT_CA", "DSYNC_SECRET_FILE", "DSYNC_DRAIN_TIMEOUT"} {
		assert.Contains(t, env, k)
	}
	assert.Equal(t, "/var/lib/dsync-node", dig(env["DSYNC_STATE_DIR"], "value"))
}
