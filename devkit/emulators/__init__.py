"""Stand-ins for AWS on loopback: IoT broker and rule, Lambda event sources, Firehose, APIs."""
