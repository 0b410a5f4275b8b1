package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/segmentio/kafka-go/sasl"
	mskiam "github.com/segmentio/kafka-go/sasl/aws_msk_iam_v2"
)

// MSKIAM returns the AWS_MSK_IAM mechanism of Amazon MSK's IAM access control:
// each connection presents a request to kafka-cluster:Connect, presigned with AWS
// Signature Version 4 for the broker's host. Credentials come from the AWS SDK's
// default chain (the AWS_ACCESS_KEY_ID environment variables, the shared config and
// credentials files and their profiles, web identity such as EKS's IRSA, the container
// and EC2 instance roles), resolved when a connection is made and cached until they
// expire. An empty region is the chain's (AWS_REGION, the profile's region).
//
// It reads the environment and the shared files only: no credential is fetched and
// nothing is sent until a connection is made.
func MSKIAM(region string) (sasl.Mechanism, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka sasl aws_msk_iam: cannot load the AWS configuration: %w", err)
	}
	return newMSKIAM(cfg)
}

// newMSKIAM is MSKIAM with the AWS configuration given: tests give static credentials.
func newMSKIAM(cfg aws.Config) (*mskiam.Mechanism, error) {
	if cfg.Region == "" {
		return nil, errors.New("kafka sasl aws_msk_iam: no AWS region: set the region in the config or AWS_REGION")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("kafka sasl aws_msk_iam: no AWS credentials provider")
	}
	return mskiam.NewMechanism(cfg), nil
}
