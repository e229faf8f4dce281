package envflag

import (
	"bytes"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApply(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cert := fs.String("tls-cert", "", "the `file`")
	listen := fs.String("listen", "127.0.0.1:9000", "address")
	d := fs.Duration("drain-timeout", time.Second, "how long")
	insecure := fs.Bool("insecure", false, "no auth")
	require.NoError(t, fs.Parse([]string{"-listen", ":1"}))
	env := map[string]string{"DSYNC_TLS_CERT": "/c.pem", "DSYNC_LISTEN": ":2", "DSYNC_DRAIN_TIMEOUT": "5s", "DSYNC_INSECURE": ""}
	set, err := Apply(fs, "DSYNC_", func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, "/c.pem", *cert)
	assert.Equal(t, ":1", *listen, "the command line wins")
	assert.Equal(t, 5*time.Second, *d)
	assert.False(t, *insecure, "an empty variable is unset")
	assert.Equal(t, map[string]bool{"tls-cert": true, "drain-timeout": true}, set)

	env["DSYNC_DRAIN_TIMEOUT"] = "soon"
	fs2 := flag.NewFlagSet("x", flag.ContinueOnError)
	fs2.Duration("drain-timeout", 0, "")
	require.NoError(t, fs2.Parse(nil))
	_, err = Apply(fs2, "DSYNC_", func(k string) string { return env[k] })
	assert.ErrorContains(t, err, "$DSYNC_DRAIN_TIMEOUT")
}

func TestPrintDefaults(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("tls-cert", "", "the certificate `file`")
	fs.String("listen", "127.0.0.1:9000", "address")
	var b bytes.Buffer
	PrintDefaults(&b, fs, "DSYNC_")
	assert.Contains(t, b.String(), "-tls-cert file")
	assert.Contains(t, b.String(), "env DSYNC_TLS_CERT")
	assert.Contains(t, b.String(), "default 127.0.0.1:9000; env DSYNC_LISTEN")
}
