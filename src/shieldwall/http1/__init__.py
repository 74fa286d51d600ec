"""Sans-io HTTP/1.x semantics on top of httptools' byte-level framing.

httptools (llhttp 9) checks the grammar: request line, header-name tokens, CR/LF rules, chunk syntax,
Content-Length digits, CL together with TE. What llhttp lets through (measured on the shared smuggling corpus:
`Host: a b`, `Transfer-Encoding: ,chunked`) and everything semantic is checked here, on parsed fields, so the
request sent upstream is rebuilt from validated values and never from the client's raw bytes.
"""
