#!lua name=jitwatch_audit
-- The audit trail's only ways to write (issue I): append entries to a chain, append a
-- checkpoint. Neither trims: no MAXLEN, no MINID, no XTRIM, no DEL. Loaded by the admin
-- user (ops/stack, docker-compose's redis-functions service); the sink and the notary
-- call them with FCALL. Redis checks the commands a function runs against the caller's
-- ACL too, so their users keep +xadd (+zadd for the sink) on their own keys: see README,
-- "Audit trail", for what that leaves open and what catches it.

-- KEYS: chain, index subject, request, action, rule.
-- ARGV: expected head seq (-1: empty chain), expected head hash ('' when empty), n, then n
-- entries of 8 (stream id, seq, offset, key, decision_id, decision, prev, hash), then per
-- index a count and that many members (score 0).
-- Appends only when the chain's head is the expected one and each entry links to the one
-- before (seq + 1, prev = its hash): a compare-and-append in one step, so two sinks never
-- interleave. Returns n, or a STALEHEAD error.
local function append(keys, args)
  local chain = keys[1]
  local last = redis.call('XREVRANGE', chain, '+', '-', 'COUNT', 1)
  local seq, hash = -1, ''
  if #last > 0 then
    local fields = last[1][2]
    for i = 1, #fields, 2 do
      if fields[i] == 'seq' then seq = tonumber(fields[i + 1])
      elseif fields[i] == 'hash' then hash = fields[i + 1] end
    end
  end
  if seq ~= tonumber(args[1]) or hash ~= args[2] then
    return redis.error_reply('STALEHEAD the chain head is seq ' .. seq)
  end
  if seq < 0 then hash = string.rep('0', 64) end
  local n = tonumber(args[3])
  local at = 4
  for _ = 1, n do
    if tonumber(args[at + 1]) ~= seq + 1 or args[at + 6] ~= hash then
      return redis.error_reply('BADLINK entry ' .. args[at] .. ' does not link to seq ' .. seq)
    end
    redis.call('XADD', chain, args[at], 'seq', args[at + 1], 'offset', args[at + 2],
               'key', args[at + 3], 'decision_id', args[at + 4], 'decision', args[at + 5],
               'prev', args[at + 6], 'hash', args[at + 7])
    seq, hash = seq + 1, args[at + 7]
    at = at + 8
  end
  for index = 2, 5 do
    local count = tonumber(args[at])
    at = at + 1
    if count > 0 then
      local members = {}
      for j = 1, count do
        members[2 * j - 1] = '0'
        members[2 * j] = args[at]
        at = at + 1
      end
      redis.call('ZADD', keys[index], unpack(members))
    end
  end
  return n
end

-- KEYS: a checkpoint stream. ARGV: payload, signature. Appends one checkpoint.
local function checkpoint(keys, args)
  if #args ~= 2 then
    return redis.error_reply('ERR a checkpoint is a payload and a signature')
  end
  return redis.call('XADD', keys[1], '*', 'payload', args[1], 'sig', args[2])
end

redis.register_function('jitwatch_audit_append', append)
redis.register_function('jitwatch_audit_checkpoint', checkpoint)
