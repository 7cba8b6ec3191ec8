package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/ferryhq/ferry/scheduler/store"
)

// S3Config is how the server reads plugin files from S3.
type S3Config struct {
	// Endpoint is an S3-compatible endpoint URL (empty: AWS S3).
	Endpoint string
	// Region is the region of requests (default us-east-1).
	Region string
	// PathStyle addresses buckets as endpoint/bucket instead of
	// bucket.endpoint (most S3-compatible servers want it).
	PathStyle bool
	// AccessKeyID and SecretAccessKey, when set, are the credentials;
	// otherwise the AWS SDK's default chain (environment, shared files,
	// instance role). Never log them.
	AccessKeyID, SecretAccessKey string
}

// S3 opens plugin files in S3.
type S3 struct {
	client *s3.Client
}

// NewS3 returns an S3 reader for cfg.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if cfg.AccessKeyID != "" || cfg.SecretAccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("plugin s3 settings: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(strings.TrimRight(cfg.Endpoint, "/"))
			// S3-compatible servers do not all compute the newer checksums.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	return &S3{client: client}, nil
}

// BucketFromARN returns the bucket an S3 bucket ARN names
// (arn:<partition>:s3:::<bucket>).
func BucketFromARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "s3" || parts[3] != "" || parts[4] != "" ||
		parts[5] == "" || strings.Contains(parts[5], "/") {
		return "", fmt.Errorf("%q is not an S3 bucket ARN (arn:aws:s3:::<bucket>)", arn)
	}
	return parts[5], nil
}

// Open starts reading the object at loc and returns its body and size. A
// missing bucket, object or version and a refused access are a *Problem
// (the plugin fails); anything else may pass and is returned as is.
func (s *S3) Open(ctx context.Context, loc store.Location) (io.ReadCloser, int64, error) {
	bucket, err := BucketFromARN(loc.BucketArn)
	if err != nil {
		return nil, 0, problem(CodeNotFound, "location.s3Location.bucketArn: %v", err)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(loc.FileKey)}
	if loc.ObjectVersion != "" {
		in.VersionId = aws.String(loc.ObjectVersion)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, 0, classify(err, bucket, loc)
	}
	return out.Body, aws.ToInt64(out.ContentLength), nil
}

// classify turns an S3 error into a *Problem when retrying cannot help.
func classify(err error, bucket string, loc store.Location) error {
	what := fmt.Sprintf("s3://%s/%s", bucket, loc.FileKey)
	if loc.ObjectVersion != "" {
		what += " (version " + loc.ObjectVersion + ")"
	}
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchBucket":
		return problem(CodeNotFound, "no such bucket: %s does not exist", bucket)
	case code == "NoSuchKey" || code == "NoSuchVersion" || code == "NotFound" || status == http.StatusNotFound:
		return problem(CodeNotFound, "no such object: %s", what)
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
		code == "AllAccessDisabled" || status == http.StatusForbidden:
		return problem(CodeAccessDenied, "access denied to %s (%s): the Ferry server's S3 credentials cannot read it", what, firstNonEmpty(code, http.StatusText(status)))
	case status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout:
		return problem(CodeUnreadable, "cannot read %s: %v", what, err)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
