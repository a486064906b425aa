-- wrk: POST a 1 MiB body.
wrk.method = "POST"
wrk.body = string.rep("p", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
