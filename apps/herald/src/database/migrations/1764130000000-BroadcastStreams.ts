import { MigrationInterface, QueryRunner } from 'typeorm';
import { ConversionProgress, selectCount } from '../conversion-progress';

/**
 * The delivery record of ADR 0007 for topic and everyone broadcasts: a stream per topic (and one for
 * everyone, id 1) whose `head` gives each publish a gapless offset in commit order; a cursor per (user,
 * stream) holding the user's membership interval and ack position (a floor and the settled offsets above
 * it); an ack journal, one row per notification per ack flush. A broadcast's delivery is a `deliveries` row
 * only once it is in trouble (unacked at its check): `herald_hand_off` makes it one.
 *
 * Additive: existing notifications keep their `deliveries` rows (no `stream_id`), and every existing
 * subscription and user gets a cursor from offset 0.
 */
export class BroadcastStreams1764130000000 implements MigrationInterface {
  name = 'BroadcastStreams1764130000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE streams (
        id    bigserial PRIMARY KEY,
        topic text UNIQUE,
        head  bigint NOT NULL DEFAULT 0,
        CHECK ((id = 1) = (topic IS NULL))
      )`);
    await q.query(`INSERT INTO streams (id, topic) VALUES (1, NULL)`);
    await q.query(`SELECT setval('streams_id_seq', 1)`);
    await q.query(`INSERT INTO streams (topic) SELECT DISTINCT topic FROM topic_subscriptions ORDER BY 1`);

    await q.query(`ALTER TABLE notifications ADD COLUMN stream_id bigint, ADD COLUMN stream_offset bigint`);
    await q.query(`
      CREATE UNIQUE INDEX notifications_stream_offset_uq
        ON notifications (stream_id, stream_offset) WHERE stream_id IS NOT NULL`);

    // Member for offsets in (from_offset, until_offset]; every offset <= settled_through is settled (acked,
    // handed off to a deliveries row, or expired), and so is each of settled_above. HOT updates: no index
    // covers the ack position, and half of each page is left free.
    await q.query(`
      CREATE TABLE cursors (
        user_id         text NOT NULL,
        stream_id       bigint NOT NULL REFERENCES streams (id),
        from_offset     bigint NOT NULL,
        until_offset    bigint,
        settled_through bigint NOT NULL,
        settled_above   bigint[] NOT NULL DEFAULT '{}',
        updated_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (user_id, stream_id)
      ) WITH (fillfactor = 50)`);
    await q.query(`CREATE INDEX cursors_by_stream_idx ON cursors (stream_id, user_id)`);
    const progress = new ConversionProgress(
      q,
      'cursors from subscriptions and users',
      await selectCount(q, `SELECT (SELECT count(*) FROM topic_subscriptions) + (SELECT count(*) FROM users) AS n`),
    );
    progress.add(
      await selectCount(
        q,
        `WITH made AS (
           INSERT INTO cursors (user_id, stream_id, from_offset, settled_through)
           SELECT t.user_id, s.id, 0, 0 FROM topic_subscriptions t JOIN streams s ON s.topic = t.topic
           RETURNING 1)
         SELECT count(*) AS n FROM made`,
      ),
    );
    progress.add(
      await selectCount(
        q,
        `WITH made AS (
           INSERT INTO cursors (user_id, stream_id, from_offset, settled_through) SELECT id, 1, 0, 0 FROM users
           RETURNING 1)
         SELECT count(*) AS n FROM made`,
      ),
    );
    progress.end();

    await q.query(`
      CREATE TABLE broadcast_acks (
        notification_id uuid NOT NULL,
        acked_at        timestamptz NOT NULL DEFAULT now(),
        user_ids        text[] NOT NULL
      )`);
    await q.query(`CREATE INDEX broadcast_acks_notification_idx ON broadcast_acks (notification_id)`);

    // A topic or everyone publish: the stream's next offset, taken under the stream row's lock (held to
    // commit, so offsets follow commit order and an abort leaves no gap), then the recipients counted in a
    // fresh snapshot: exactly the cursors whose interval covers the offset, since a subscribe or a first-seen
    // user reads the head under FOR SHARE. A topic nobody ever subscribed to has no stream: no offset, no
    // recipient. Nothing with an idempotency key already used (the caller reads the earlier publish).
    await q.query(`
      CREATE FUNCTION herald_publish_broadcast(p_id uuid, p_publisher text, p_key text, p_hash text,
                                               p_audience jsonb, p_topic text, p_event text, p_payload jsonb,
                                               p_ttl integer)
      RETURNS TABLE (id uuid, seq bigint, event text, payload jsonb, topic text, created_at timestamptz,
                     expires_at timestamptz, recipients integer, stream_id bigint, stream_offset bigint)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE s bigint; o bigint; n integer := 0;
      BEGIN
        IF p_key IS NOT NULL AND EXISTS (SELECT 1 FROM notifications x
                                          WHERE x.publisher_id = p_publisher AND x.idempotency_key = p_key) THEN
          RETURN;
        END IF;
        IF p_topic IS NULL THEN
          UPDATE streams x SET head = x.head + 1 WHERE x.id = 1 RETURNING x.id, x.head INTO s, o;
        ELSE
          UPDATE streams x SET head = x.head + 1 WHERE x.topic = p_topic RETURNING x.id, x.head INTO s, o;
        END IF;
        IF s IS NOT NULL THEN
          SELECT count(*) INTO n FROM cursors c
           WHERE c.stream_id = s AND c.from_offset < o AND (c.until_offset IS NULL OR c.until_offset >= o);
        END IF;
        RETURN QUERY
          INSERT INTO notifications AS x
            (id, publisher_id, idempotency_key, request_hash, audience, topic, event, payload, ttl_seconds,
             expires_at, recipients, stream_id, stream_offset)
          VALUES (p_id, p_publisher, p_key, p_hash, p_audience, p_topic, p_event, p_payload, p_ttl,
                  now() + p_ttl * interval '1 second', n, s, o)
          ON CONFLICT (publisher_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
          RETURNING x.id, x.seq, x.event, x.payload, x.topic, x.created_at, x.expires_at, x.recipients,
                    x.stream_id, x.stream_offset;
        -- The key was taken meanwhile: give the offset back (the lock is still ours).
        IF NOT FOUND AND s IS NOT NULL THEN
          UPDATE streams x SET head = x.head - 1 WHERE x.id = s;
        END IF;
      END $$`);

    // Membership changes serialize with publishes on the stream's head. A subscribe starts the cursor at the
    // head; a resubscribe first hands the open offsets of the earlier interval to deliveries rows (pending,
    // due now). An unsubscribe ends the interval at the head and withdraws nothing already published.
    await q.query(`
      CREATE FUNCTION herald_subscribe(p_user text, p_topic text, p_max integer) RETURNS text
      LANGUAGE plpgsql AS $$
      DECLARE s bigint; h bigint; c record;
      BEGIN
        IF EXISTS (SELECT 1 FROM topic_subscriptions WHERE user_id = p_user AND topic = p_topic) THEN
          RETURN 'exists';
        END IF;
        IF (SELECT count(*) FROM topic_subscriptions WHERE user_id = p_user) >= p_max THEN RETURN 'limit'; END IF;
        INSERT INTO topic_subscriptions (user_id, topic) VALUES (p_user, p_topic) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN RETURN 'exists'; END IF;
        INSERT INTO streams (topic) VALUES (p_topic) ON CONFLICT (topic) DO NOTHING;
        SELECT id, head INTO s, h FROM streams WHERE topic = p_topic FOR SHARE;
        SELECT * INTO c FROM cursors WHERE user_id = p_user AND stream_id = s FOR UPDATE;
        IF FOUND THEN
          PERFORM herald_hand_off(x.id, ARRAY[p_user], NULL) FROM notifications x
            WHERE x.stream_id = s AND x.stream_offset > c.settled_through
              AND x.stream_offset <= coalesce(c.until_offset, h) AND x.expires_at > now()
            ORDER BY x.stream_offset;
          UPDATE cursors SET from_offset = h, until_offset = NULL, settled_through = h, settled_above = '{}',
                             updated_at = now()
           WHERE user_id = p_user AND stream_id = s;
        ELSE
          INSERT INTO cursors (user_id, stream_id, from_offset, settled_through) VALUES (p_user, s, h, h);
        END IF;
        RETURN 'added';
      END $$`);
    await q.query(`
      CREATE FUNCTION herald_unsubscribe(p_user text, p_topic text) RETURNS boolean
      LANGUAGE plpgsql AS $$
      DECLARE s bigint; h bigint;
      BEGIN
        DELETE FROM topic_subscriptions WHERE user_id = p_user AND topic = p_topic;
        IF NOT FOUND THEN RETURN false; END IF;
        SELECT id, head INTO s, h FROM streams WHERE topic = p_topic FOR SHARE;
        UPDATE cursors SET until_offset = h, updated_at = now() WHERE user_id = p_user AND stream_id = s;
        RETURN true;
      END $$`);

    // The settled position after settling `offsets` too: the floor moves over settled and expired offsets.
    await q.query(`
      CREATE FUNCTION herald_settle(p_stream bigint, p_until bigint, p_through bigint, p_above bigint[],
                                    p_offsets bigint[], OUT through bigint, OUT above bigint[])
      LANGUAGE plpgsql AS $$
      DECLARE s bigint[];
      BEGIN
        s := ARRAY(SELECT DISTINCT o FROM unnest(p_above || p_offsets) AS o WHERE o > p_through ORDER BY o);
        through := p_through;
        LOOP
          EXIT WHEN p_until IS NOT NULL AND through >= p_until;
          IF cardinality(s) > 0 AND s[1] = through + 1 THEN
            through := through + 1;
            s := s[2:];
          ELSIF EXISTS (SELECT 1 FROM notifications x
                         WHERE x.stream_id = p_stream AND x.stream_offset = through + 1 AND x.expires_at <= now()) THEN
            through := through + 1;
          ELSE
            EXIT;
          END IF;
        END LOOP;
        above := s;
      END $$`);

    // Virtual deliveries of a stream notification to these users become deliveries rows, sent once at
    // p_sent_at and due now (the sweep resends, parks or fails them), or pending and due now (p_sent_at
    // null): only those still open, with the cursor locked, so an ack and a hand-off never both settle one.
    await q.query(`
      CREATE FUNCTION herald_hand_off(p_notification uuid, p_users text[], p_sent_at timestamptz)
      RETURNS integer LANGUAGE plpgsql AS $$
      DECLARE n record; c record; moved integer := 0;
      BEGIN
        SELECT id, seq, stream_id, stream_offset, expires_at INTO n FROM notifications WHERE id = p_notification;
        IF n.stream_id IS NULL OR n.expires_at <= now() THEN RETURN 0; END IF;
        FOR c IN SELECT * FROM cursors
                  WHERE stream_id = n.stream_id AND user_id = ANY (p_users)
                    AND from_offset < n.stream_offset AND (until_offset IS NULL OR until_offset >= n.stream_offset)
                  ORDER BY user_id COLLATE "C" FOR UPDATE LOOP
          CONTINUE WHEN n.stream_offset <= c.settled_through OR n.stream_offset = ANY (c.settled_above);
          INSERT INTO deliveries (notification_id, user_id, seq, expires_at, status, attempts, next_attempt_at,
                                  first_sent_at, last_sent_at)
          VALUES (n.id, c.user_id, n.seq, n.expires_at, CASE WHEN p_sent_at IS NULL THEN 'pending' ELSE 'sent' END,
                  CASE WHEN p_sent_at IS NULL THEN 0 ELSE 1 END, now(), p_sent_at, p_sent_at)
          ON CONFLICT DO NOTHING;
          UPDATE cursors x SET (settled_through, settled_above) =
                   (SELECT s.through, s.above
                      FROM herald_settle(x.stream_id, x.until_offset, x.settled_through, x.settled_above,
                                         ARRAY[n.stream_offset]) s),
                 updated_at = now()
           WHERE x.user_id = c.user_id AND x.stream_id = c.stream_id;
          moved := moved + 1;
        END LOOP;
        RETURN moved;
      END $$`);

    // A replay batch's check: what the batch sent of the user's streams (seq in (p_after, p_through]) and
    // is still open becomes a deliveries row, sent at p_sent_at and due now.
    await q.query(`
      CREATE FUNCTION herald_hand_off_replayed(p_user text, p_after bigint, p_through bigint,
                                               p_sent_at timestamptz)
      RETURNS uuid[] LANGUAGE plpgsql AS $$
      DECLARE moved uuid[];
      BEGIN
        SELECT coalesce(array_agg(x.id) FILTER (WHERE herald_hand_off(x.id, ARRAY[p_user], p_sent_at) > 0), '{}')
          INTO moved
          FROM cursors c
          JOIN notifications x ON x.stream_id = c.stream_id AND x.stream_offset > c.settled_through
                              AND (c.until_offset IS NULL OR x.stream_offset <= c.until_offset)
         WHERE c.user_id = p_user AND x.seq > p_after AND x.seq <= p_through AND x.expires_at > now()
           AND NOT x.stream_offset = ANY (c.settled_above);
        RETURN moved;
      END $$`);

    // The five counts of a notification: its rows by state, plus, for a stream notification, the journal's
    // acks and the virtual rest (pending, or expired past the TTL).
    await q.query(`
      CREATE FUNCTION herald_counts(p_notification uuid, p_stream bigint, p_recipients integer,
                                    p_expires_at timestamptz)
      RETURNS jsonb LANGUAGE sql STABLE AS $$
        WITH r AS (SELECT status, count(*)::int AS n FROM deliveries
                    WHERE notification_id = p_notification GROUP BY status),
             j AS (SELECT coalesce(sum(cardinality(user_ids)), 0)::int AS n FROM broadcast_acks
                    WHERE p_stream IS NOT NULL AND notification_id = p_notification),
             v AS (SELECT CASE WHEN p_stream IS NULL THEN 0
                               ELSE p_recipients - (SELECT n FROM j) - coalesce((SELECT sum(n) FROM r), 0)::int END AS n)
        SELECT jsonb_build_object(
          'pending', coalesce((SELECT n FROM r WHERE status = 'pending'), 0)
                       + CASE WHEN p_expires_at > now() THEN (SELECT n FROM v) ELSE 0 END,
          'sent', coalesce((SELECT n FROM r WHERE status = 'sent'), 0),
          'acked', coalesce((SELECT n FROM r WHERE status = 'acked'), 0) + (SELECT n FROM j),
          'expired', coalesce((SELECT n FROM r WHERE status = 'expired'), 0)
                       + CASE WHEN p_expires_at > now() THEN 0 ELSE (SELECT n FROM v) END,
          'failed', coalesce((SELECT n FROM r WHERE status = 'failed'), 0))
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS herald_unsubscribe(text, text)`);
    await q.query(`DROP FUNCTION IF EXISTS herald_subscribe(text, text, integer)`);
    await q.query(
      `DROP FUNCTION IF EXISTS herald_publish_broadcast(uuid, text, text, text, jsonb, text, text, jsonb, integer)`,
    );
    await q.query(`DROP FUNCTION IF EXISTS herald_counts(uuid, bigint, integer, timestamptz)`);
    await q.query(`DROP FUNCTION IF EXISTS herald_hand_off_replayed(text, bigint, bigint, timestamptz)`);
    await q.query(`DROP FUNCTION IF EXISTS herald_hand_off(uuid, text[], timestamptz)`);
    await q.query(`DROP FUNCTION IF EXISTS herald_settle(bigint, bigint, bigint, bigint[], bigint[])`);
    await q.query(`DROP TABLE IF EXISTS broadcast_acks`);
    await q.query(`DROP TABLE IF EXISTS cursors`);
    await q.query(`DROP INDEX IF EXISTS notifications_stream_offset_uq`);
    await q.query(`ALTER TABLE notifications DROP COLUMN IF EXISTS stream_offset, DROP COLUMN IF EXISTS stream_id`);
    await q.query(`DROP TABLE IF EXISTS streams`);
  }
}
