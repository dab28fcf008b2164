def main(args, argv):
    raise SystemExit("sweep: not written yet")
