package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ferryhq/ferry/cmd/ferry/internal/devstack"
	"github.com/rs/zerolog"
)

// devEnv is what the embedded stack (or the user's real services) gives
// the control plane of `ferry dev`.
type devEnv struct {
	// NATSURL is the NATS to keep state in and to hand to workers.
	NATSURL string
	// KafkaBootstrap is the Kafka users' connectors should use by default
	// (the embedded broker, or --kafka).
	KafkaBootstrap string
	// S3Endpoint is the S3 endpoint (embedded or --s3-endpoint).
	S3Endpoint string
	// WorkerDefaults fill in every connector's configuration: with the
	// embedded S3 its endpoint, path-style access and credentials. They
	// hold credentials: never log them.
	WorkerDefaults map[string]string
	// Stack is the embedded stack (parts the user replaced are absent).
	Stack *devstack.Stack
	// Logger is the process logger; LogFile, if not nil, is where it also
	// writes JSON lines, for the workers' output to go too.
	Logger  zerolog.Logger
	LogFile io.Writer
}

// runDev starts the embedded stack, then the control plane on top of it
// (wireDev), and stops both when ctx ends.
func runDev(ctx context.Context, cfg devConfig) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	var logFile *os.File
	if p := cfg.logFilePath(); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		defer f.Close()
		logFile = f
	}
	var extra io.Writer
	if logFile != nil {
		extra = logFile
	}
	log := cfg.Log.newLogger(os.Stderr, extra)

	stack, err := devstack.Start(ctx, cfg.stackConfig(log))
	if err != nil {
		return err
	}
	defer stack.Close()

	env := devEnv{
		NATSURL:        firstNonEmpty(cfg.NATS, stack.NATSURL()),
		KafkaBootstrap: firstNonEmpty(cfg.Kafka, stack.KafkaAddr()),
		S3Endpoint:     firstNonEmpty(cfg.S3Endpoint, stack.S3Endpoint()),
		WorkerDefaults: stack.WorkerDefaults(),
		Stack:          stack,
		Logger:         log,
		LogFile:        extra,
	}
	if cfg.S3Endpoint != "" {
		// A real S3 endpoint: point connectors at it; credentials are the user's.
		env.WorkerDefaults["store.url"] = strings.TrimRight(cfg.S3Endpoint, "/")
	}
	ev := log.Info().Str("data_dir", cfg.DataDir).Str("nats", env.NATSURL).Str("kafka", env.KafkaBootstrap).Str("s3", env.S3Endpoint)
	if cfg.S3Endpoint == "" {
		ev = ev.Str("s3_bucket", stack.S3Bucket())
	}
	if p := cfg.logFilePath(); p != "" {
		ev = ev.Str("log_file", p)
	}
	ev.Msg("dev services ready")
	err = wireDev(ctx, cfg, env)
	log.Info().Msg("stopping dev services")
	return err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
