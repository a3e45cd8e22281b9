// Tables of the event stream and webhooks, and the migration from the older campaign_events table,
// which is now a view over the campaign events (the stats route and older readers keep working). The view's
// WHERE repeats the partial index's, so reading one campaign's own events does not scan its update events.
import type { Db } from "../db";

export const EVENTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL,
  campaign_id TEXT, device_id TEXT, update_id TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_at ON events(at);
CREATE INDEX IF NOT EXISTS events_campaign ON events(campaign_id, id) WHERE campaign_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_device ON events(device_id, id) WHERE device_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_campaign_own ON events(campaign_id, id) WHERE type LIKE 'campaign.%';
CREATE TABLE IF NOT EXISTS webhooks (
  webhook_id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, types TEXT NOT NULL, campaign_id TEXT,
  created_by TEXT, created_at INTEGER NOT NULL,
  queued_through INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_queue (
  webhook_id TEXT NOT NULL, event_id INTEGER NOT NULL, lane TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
  PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_queue_lane ON webhook_queue(webhook_id, lane, event_id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT, webhook_id TEXT NOT NULL, event_id INTEGER NOT NULL, event_type TEXT NOT NULL,
  attempt INTEGER NOT NULL, status_code INTEGER, error TEXT, ok INTEGER NOT NULL, at INTEGER NOT NULL, duration_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_at ON webhook_deliveries(at);
`;

export const CAMPAIGN_EVENTS_VIEW = `CREATE VIEW IF NOT EXISTS campaign_events AS
  SELECT id, campaign_id, at, substr(type, 10) AS type, data AS detail FROM events WHERE type LIKE 'campaign.%'`;

export function migrateEvents(db: Db): void {
  db.transaction(() => {
    db.exec(EVENTS_SCHEMA);
    const old = db.prepare("SELECT type FROM sqlite_master WHERE name = 'campaign_events'").get() as { type: string } | undefined;
    if (old?.type === "table") {
      db.exec(`INSERT INTO events(at, type, campaign_id, data)
        SELECT at, 'campaign.' || type, campaign_id, COALESCE(detail, '{}') FROM campaign_events ORDER BY id;
        DROP TABLE campaign_events;`);
    }
    db.exec(CAMPAIGN_EVENTS_VIEW);
  })();
}
