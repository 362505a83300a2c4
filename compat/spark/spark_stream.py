"""The original tutorial's Spark job (its spark_stream.py), as the seed
describes it, run against userstream: PySpark Structured Streaming reads
users_created from the earliest offset, parses each message's JSON with the
original's schema and appends the users to created_users.

The original wrote to Cassandra with the DataStax connector, which has no
release for Spark 4; this job writes with foreachBatch and Spark's JDBC
writer to PostgreSQL instead, to a table with the original's columns (id
uuid, the rest text; no dob, as the original). Pinned versions:
compat/requirements-spark.txt (pyspark) and
internal/engines/poms/spark-kafka.xml (the Kafka source and the JDBC driver,
passed as spark.jars).

    spark_stream.py --bootstrap HOST:PORT --jdbc-url jdbc:postgresql://... \
        --table SCHEMA.created_users --checkpoint DIR --jars A.jar,B.jar \
        [--topic users_created] [--available-now] [--trigger SECONDS]
        [--consumer-offsets]

The database user and password come from JDBC_USER and JDBC_PASSWORD (never
on the command line). With --available-now the job reads what the topic
holds when it starts, stores it and stops, then prints one JSON object:
{"spark", "rows", "batches", "seconds", "first_batch_seconds"}; without it,
it runs until killed, as the original. --trigger N starts a micro-batch
every N seconds (processingTime); without it Spark's default trigger starts
the next batch as soon as the last one ends.
"""
import argparse
import json
import os
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql.functions import col, from_json
from pyspark.sql.types import StringType, StructField, StructType

# The original's stream schema (create_selection_df_from_kafka): every field
# a string, no dob.
COLUMNS = ["id", "first_name", "last_name", "gender", "address", "post_code",
           "email", "username", "registered_date", "phone", "picture"]
SCHEMA = StructType([StructField(c, StringType(), False) for c in COLUMNS])


def create_spark_connection(jars, consumer_offsets):
    # Small-machine settings: two local cores, no UI, a 1 GiB driver.
    spark = (SparkSession.builder.appName("SparkDataStreaming")
             .master("local[2]")
             .config("spark.jars", jars)
             .config("spark.sql.streaming.kafka.useDeprecatedOffsetFetching", str(consumer_offsets).lower())
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.driver.memory", "1g")
             .config("spark.ui.enabled", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    return spark


def connect_to_kafka(spark, bootstrap, topic):
    return (spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load())


def create_selection_df_from_kafka(df):
    return (df.selectExpr("CAST(value AS STRING)")
            .select(from_json(col("value"), SCHEMA).alias("data")).select("data.*"))


def _input_rows(progress):
    # pyspark 4 gives progress objects, 3.x dicts.
    if isinstance(progress, dict):
        return progress["numInputRows"]
    return progress.numInputRows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="users_created")
    ap.add_argument("--jdbc-url", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--jars", required=True, help="comma-separated jars: the Kafka source and the JDBC driver")
    ap.add_argument("--consumer-offsets", action="store_true",
                    help="find offsets with a Kafka consumer (Metadata requests) rather than the Admin client "
                         "(DescribeTopicPartitions): spark.sql.streaming.kafka.useDeprecatedOffsetFetching")
    ap.add_argument("--available-now", action="store_true",
                    help="store what the topic holds now, then stop and print a summary")
    ap.add_argument("--trigger", type=float, default=0,
                    help="seconds between micro-batches (processingTime trigger; 0: Spark's default)")
    args = ap.parse_args()
    if args.available_now and args.trigger:
        ap.error("--trigger and --available-now exclude each other")

    props = {"user": os.environ.get("JDBC_USER", ""), "password": os.environ.get("JDBC_PASSWORD", ""),
             "driver": "org.postgresql.Driver"}
    start = time.monotonic()
    first = []

    def write_batch(batch, batch_id):
        batch.write.jdbc(args.jdbc_url, args.table, mode="append", properties=props)
        if not first:
            first.append(time.monotonic() - start)

    spark = create_spark_connection(args.jars, args.consumer_offsets)
    users = create_selection_df_from_kafka(connect_to_kafka(spark, args.bootstrap, args.topic))
    writer = users.writeStream.foreachBatch(write_batch).option("checkpointLocation", args.checkpoint)
    if args.available_now:
        writer = writer.trigger(availableNow=True)
    elif args.trigger:
        writer = writer.trigger(processingTime=f"{args.trigger} seconds")
    query = writer.start()
    query.awaitTermination()
    if query.exception() is not None:
        print(f"spark_stream.py: the query failed: {query.exception()}", file=sys.stderr)
        return 1
    rows = [_input_rows(p) for p in query.recentProgress]
    print(json.dumps({
        "spark": spark.version,
        "rows": sum(rows),
        "batches": sum(1 for n in rows if n > 0),
        "seconds": round(time.monotonic() - start, 3),
        "first_batch_seconds": round(first[0], 3) if first else None,
    }))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
