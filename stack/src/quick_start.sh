ISS=@ISS@ MCP=@MCP@ JAR=$(mktemp)
AUTH='@AUTHORIZE@'
field() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | sed 's/&#38;/\&/g; s/&amp;/\&/g'; }
form() { echo "--data-urlencode csrf_token=$(field csrf_token <<<"$1") --data-urlencode request=$(field request <<<"$1")"; }
page=$(curl -s -c "$JAR" "$AUTH")
curl -s -b "$JAR" -c "$JAR" -o /dev/null "$ISS/login" -d username=@USER@ -d password=@PASSWORD@ $(form "$page")
page=$(curl -s -b "$JAR" "$AUTH")
CODE=$(curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' "$ISS/consent" -d decision=approve $(form "$page") | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
TOKEN=$(curl -s "$ISS/token" -d grant_type=authorization_code -d client_id=@CLIENT@ -d redirect_uri=http://127.0.0.1:8976/callback -d code_verifier=@VERIFIER@ -d code="$CODE" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
H=(-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -H "Accept: application/json, text/event-stream")
curl -si "$MCP" "${H[@]}" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' | tee "$JAR.init"; echo
SID=$(sed -n 's/^mcp-session-id: *//Ip' "$JAR.init" | tr -d '\r')
H+=(-H "Mcp-Session-Id: $SID" -H "MCP-Protocol-Version: 2025-11-25")
curl -s "$MCP" "${H[@]}" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
curl -s "$MCP" "${H[@]}" -d '{"jsonrpc":"2.0","id":2,"method":"tools/list"}'; echo
curl -s "$MCP" "${H[@]}" -d '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create_secure_note","arguments":{"title":"hello","content":"from curl"}}}'; echo
