// Package e2e holds end-to-end tests of the worker engine with real
// connectors: Kafka (kfake) → runtime → S3 sink → S3 (versitygw). It has no
// non-test code; it exists so runtime's own tests need not import
// connectors.
package e2e
