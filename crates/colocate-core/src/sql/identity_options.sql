-- The ADD clause that re-creates an identity column exactly (kind and sequence options), and the
-- next value it should hand out. $1 = the table (quoted, qualified), $2 = the column.
SELECT format('GENERATED %s AS IDENTITY (START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s %s)',
              CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END,
              s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
              CASE WHEN s.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END) AS clause,
       coalesce(pg_sequence_last_value(s.seqrelid) + s.seqincrement, s.seqstart) AS next_value
FROM pg_attribute a
JOIN pg_depend d ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum
                 AND d.classid = 'pg_class'::regclass AND d.deptype = 'i'
JOIN pg_sequence s ON s.seqrelid = d.objid
WHERE a.attrelid = to_regclass($1) AND a.attname = $2
