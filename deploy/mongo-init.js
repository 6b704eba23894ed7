// One-shot set-up of REEF's MongoDB (run by the mongo-init service; safe to run again).
const host = process.env.MONGO_ADVERTISED_HOST || "dreamteam";

try {
  rs.status();
  print("replica set already initiated");
} catch (e) {
  rs.initiate({ _id: "rs0", members: [{ _id: 0, host: `${host}:27017` }] });
  print(`replica set rs0 initiated with member ${host}:27017`);
}
// Wait until this member is primary before creating users.
for (let i = 0; i < 60 && !db.hello().isWritablePrimary; i++) sleep(1000);

const admin = db.getSiblingDB("admin");
function ensureUser(name, pwd, roles) {
  if (admin.getUser(name)) {
    admin.updateUser(name, { pwd, roles });
    print(`user ${name} updated`);
  } else {
    admin.createUser({ user: name, pwd, roles });
    print(`user ${name} created`);
  }
}
// REEF: read/write its database (change streams included), and see the topology.
ensureUser("reef", process.env.REEF_DB_PASSWORD, [
  { role: "readWrite", db: "factory" },
  { role: "clusterMonitor", db: "admin" },
]);
// mongot: syncs search indexes from the oplog.
ensureUser("mongotUser", process.env.MONGOT_PASSWORD, [{ role: "searchCoordinator", db: "admin" }]);
