"""`energy-monitoring`: the command line for operators and installers.

Stack outputs, meters (register, rotate, revoke, list), the meter simulator and the local
pipeline. Heavy libraries (boto3, the devkit, aws-cdk-lib) load only in the commands that
need them, so `--help` answers at once.
"""
