# Turns the migration files given as arguments into a C array of {name, sql} pairs, in the
# order given (the Makefile sorts them), so that sink-svc carries its schema inside the binary.
BEGIN {
    print "/* Generated from sink-svc/migrations by embed-sql.awk; do not edit. */"
    print "#include \"sink-svc/migrations.h\""
    print "const struct migration migrations_table[] = {"
    n = 0
}
FNR == 1 {
    if (n > 0) print "    },"
    name = FILENAME
    sub(/^.*\//, "", name)
    printf "    {\"%s\",\n", name
    n++
}
{
    line = $0
    gsub(/\\/, "\\\\", line)
    gsub(/"/, "\\\"", line)
    printf "     \"%s\\n\"\n", line
}
END {
    if (n > 0) print "    },"
    print "};"
    printf "const int migrations_count = %d;\n", n
}
