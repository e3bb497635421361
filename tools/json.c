/* json.c: a tiny streaming JSON writer for --json output. It keeps track of
 * commas and nesting, and writes every string as valid JSON whatever its
 * bytes: quotes, backslashes and control characters are escaped, and bytes
 * that are not UTF-8 (heap names and keys are arbitrary bytes) become
 * U+FFFD, so that any parser accepts the document.
 */
#include "tool.h"

#include <inttypes.h>
#include <math.h>

void json_init(struct json *j, FILE *f) {
  j->f = f;
  j->depth = 0;
  j->has_items[0] = false;
  j->after_key = false;
}

/* Before any value or key: the comma that separates it from the previous
 * item, unless it is the value of a key. */
static void before_item(struct json *j) {
  if (j->after_key) {
    j->after_key = false;
    return;
  }
  if (j->has_items[j->depth])
    fputc(',', j->f);
  j->has_items[j->depth] = true;
}

static void open_scope(struct json *j, char c) {
  before_item(j);
  fputc(c, j->f);
  if (j->depth + 1 < JSON_MAX_DEPTH)
    j->depth++;
  j->has_items[j->depth] = false;
}

static void close_scope(struct json *j, char c) {
  fputc(c, j->f);
  if (j->depth > 0)
    j->depth--;
  if (j->depth == 0)
    fputc('\n', j->f);
}

void json_begin_object(struct json *j) {
  open_scope(j, '{');
}
void json_end_object(struct json *j) {
  close_scope(j, '}');
}
void json_begin_array(struct json *j) {
  open_scope(j, '[');
}
void json_end_array(struct json *j) {
  close_scope(j, ']');
}

size_t utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  size_t n;
  unsigned min, v;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, min = 0x80, v = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, min = 0x800, v = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, min = 0x10000, v = c & 0x07;
  } else {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    v = v << 6 | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
    return 0;
  return n;
}

static void write_escaped(FILE *f, const unsigned char *s) {
  while (*s) {
    unsigned c = *s;
    size_t n = utf8_len(s);
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc((int)c, f);
    } else if (c == '\n') {
      fputs("\\n", f);
    } else if (c == '\t') {
      fputs("\\t", f);
    } else if (c < 0x20 || c == 0x7f) {
      fprintf(f, "\\u%04x", c);
    } else if (n == 0) {
      fputs("\\ufffd", f);
    } else {
      fwrite(s, 1, n, f);
    }
    s += n ? n : 1;
  }
}

void json_key(struct json *j, const char *key) {
  before_item(j);
  fputc('"', j->f);
  write_escaped(j->f, (const unsigned char *)key);
  fputs("\":", j->f);
  j->after_key = true;
}

void json_string(struct json *j, const char *s) {
  before_item(j);
  fputc('"', j->f);
  write_escaped(j->f, (const unsigned char *)s);
  fputc('"', j->f);
}

void json_u64(struct json *j, uint64_t v) {
  before_item(j);
  fprintf(j->f, "%" PRIu64, v);
}

/* JSON has no NaN or infinity: those are written as null. */
void json_double(struct json *j, double v) {
  if (!isfinite(v)) {
    json_null(j);
    return;
  }
  before_item(j);
  fprintf(j->f, "%.6g", v);
}

void json_bool(struct json *j, bool v) {
  before_item(j);
  fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j) {
  before_item(j);
  fputs("null", j->f);
}

void json_kv_string(struct json *j, const char *key, const char *s) {
  json_key(j, key);
  json_string(j, s);
}

void json_kv_u64(struct json *j, const char *key, uint64_t v) {
  json_key(j, key);
  json_u64(j, v);
}
