package devstack

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// natsServer is an in-process nats-server with JetStream.
type natsServer struct {
	srv *server.Server
	url string
}

func startNATS(ctx context.Context, cfg NATSConfig, storeDir string, log zerolog.Logger) (*natsServer, error) {
	host, portStr, _ := net.SplitHostPort(cfg.Addr) // checked by Validate
	port, _ := strconv.Atoi(portStr)
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// nats-server reports a failed listen only through its logger, so
		// find out first whether the address is free.
		ln, err := listen("nats", FlagNATSListen, FlagNATS, cfg.Addr)
		if err != nil {
			return nil, err
		}
		ln.Close()
	}
	opts := &server.Options{
		ServerName: "ferry-dev",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		// A dev machine's memory and disk, not a production cluster's.
		JetStreamMaxMemory: 256 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.SetLoggerV2(natsLogger{log.With().Str("server", "nats").Logger()}, false, false, false)
	srv.Start()
	deadline := 10 * time.Second
	if d, ok := ctx.Deadline(); ok && time.Until(d) < deadline {
		deadline = time.Until(d)
	}
	if !srv.ReadyForConnections(deadline) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: not ready to accept connections on %s within %s (is the address free? change it with --%s)",
			cfg.Addr, deadline, FlagNATSListen)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: jetstream did not start (store dir %s)", storeDir)
	}
	return &natsServer{srv: srv, url: srv.ClientURL()}, nil
}

func (n *natsServer) close() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// natsLogger bridges nats-server's logger to zerolog. Its notices are
// debug lines: a user of `ferry dev` cares about Ferry, not NATS internals.
type natsLogger struct{ log zerolog.Logger }

var _ server.Logger = natsLogger{}

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }

// Fatalf logs an error; it must not exit the process as nats-server's own
// logger does, since `ferry dev` owns the process.
func (l natsLogger) Fatalf(format string, v ...any) { l.log.Error().Msgf(format, v...) }
func (l natsLogger) Errorf(format string, v ...any) { l.log.Error().Msgf(format, v...) }
func (l natsLogger) Debugf(format string, v ...any) { l.log.Trace().Msgf(format, v...) }
func (l natsLogger) Tracef(format string, v ...any) { l.log.Trace().Msgf(format, v...) }
