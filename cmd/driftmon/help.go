package main

import (
	"flag"
	"fmt"

	"github.com/driftmon/driftmon/internal/resultfile"
)

// envVar is an environment variable a command reads, as its -h lists it.
type envVar struct{ name, use string }

// apiTokenEnv names the API token's variable.
const apiTokenEnv = "DRIFTMON_API_TOKEN"

// The environment variables driftmon reads. TestHelpNamesEveryEnvironmentVariable
// fails when the code the binary links reads one that no command's -h names.
var (
	envConfig = envVar{"${NAME}", "any variable the config names in a value, e.g. password: ${KAFKA_PASSWORD};\n" +
		"a variable that is not set is an error naming the value's path. Secrets can come\n" +
		"from files instead, through the *_file keys (password_file, token_file, ...)"}
	envAPIToken = envVar{apiTokenEnv, "bearer token the API's calls that change something (silences, outbox\n" +
		"replays) must present; unset, the API is read-only"}
	envAWS = envVar{"AWS_*", "with kafka.sasl.mechanism AWS_MSK_IAM, the AWS SDK's default chain: AWS_REGION,\n" +
		"AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,\n" +
		"AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (EKS's IAM roles for service accounts),\n" +
		"AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE and the rest of the SDK's variables"}
	envResults = envVar{resultfile.Env, "append one JSON line per closed window to this file (the acceptance\n" +
		"tests compare runs with it)"}
)

// setUsage makes fs's -h print synopsis, every flag with its default, and the
// environment variables the command reads.
func setUsage(fs *flag.FlagSet, synopsis string, env ...envVar) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, synopsis)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
		fmt.Fprintln(w, "\nEnvironment:")
		if len(env) == 0 {
			fmt.Fprintln(w, "  none")
		}
		for _, e := range env {
			fmt.Fprintf(w, "  %s\n    \t%s\n", e.name, indent(e.use))
		}
	}
}

// indent puts PrintDefaults' indentation before every line of s after the first.
func indent(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' {
			out = append(out, "    \t"...)
		}
	}
	return string(out)
}
